/**
 * `rateLimiting` options (PRODUCT §4.2): Prism's shape and Switchyard's, one
 * limit or a list, at `http` level or per route (the route's replaces the
 * global one). Validated at start; every problem is reported with its path.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { formatPath, type ConfigIssue } from '../../config/validate.js'
import type { Algorithm } from './store.js'

/** What a `key: { hook }` function sees of the request. */
export interface RateLimitKeyRequest {
  readonly id: string
  readonly method: string
  /** The route pattern, e.g. `/users/:id`. */
  readonly route: string
  readonly path: string
  readonly params: Readonly<Record<string, string>>
  readonly query: Readonly<Record<string, string | string[]>>
  readonly headers: IncomingHttpHeaders
  /** The client address (X-Forwarded-For only from a trusted proxy). */
  readonly remoteAddress: string
  /** Verified JWT claims, when the route authenticates. */
  readonly claims: Readonly<Record<string, unknown>> | undefined
  /**
   * Reads and parses the request body (JSON → value, form → object, text →
   * string), within the route's body limit. The body still reaches the services
   * byte for byte.
   */
  readBody: () => Promise<unknown>
}

/** Returns the value to count by; `undefined` or `''` counts by the client address. */
export type RateLimitKeyHook = (request: RateLimitKeyRequest) => string | undefined | Promise<string | undefined>

/** What a limit counts by. */
export type RateLimitKey = 'ip' | 'route' | { header: string } | { claim: string } | { hook: RateLimitKeyHook }

export type OnRedisDown = 'failOpen' | 'failClosed' | 'local'

/** One limit, in Prism's shape or Switchyard's (or a mix). */
export interface RateLimitConfig {
  /** Prism: `"ip"` (the only type Prism had): count per client address. A limit with `type` defaults to `sliding-window`. */
  type?: 'ip'
  /** Prism's name for `limit`. */
  maxRequests?: number
  /** Prism's name for `windowMs`. */
  duration?: number
  /** Requests admitted per window. */
  limit?: number
  /** The window, in milliseconds. */
  windowMs?: number
  /**
   * `gcra` (a token bucket of `limit` tokens refilled evenly over the window)
   * or `sliding-window` (at most `limit` requests in any window).
   * @default "gcra" ("sliding-window" for Prism's `type: "ip"` shape)
   */
  algorithm?: Algorithm
  /** @default "ip" */
  key?: RateLimitKey
  /**
   * What to do while Redis is unreachable.
   * @default "local"
   */
  onRedisDown?: OnRedisDown
  /** Status of a refusal (Prism). @default 429 */
  errorStatus?: number
  /** Body of a refusal (Prism); a string is sent as text, anything else as JSON. @default the GW_ERR_RATE_LIMITED error body */
  errorBody?: unknown
  /** Limits with the same bucket name share one counter across routes. @default one counter per route and limit */
  bucket?: string
  /** IPv6 clients are counted per network of this many bits. @default 64 */
  ipv6PrefixBits?: number
}

/** The `rateLimiting` key: one limit, several, or `"none"` to turn off a global one for a route. */
export type RateLimitingConfig = RateLimitConfig | RateLimitConfig[] | 'none' | false

export type KeySpec =
  | { kind: 'ip' }
  | { kind: 'route' }
  | { kind: 'header', name: string }
  | { kind: 'claim', name: string }
  | { kind: 'hook', fn: RateLimitKeyHook }

/** One limit, validated, with defaults applied. */
export interface LimitSpec {
  /** Where it was configured, e.g. `http.routes["/login"].POST.rateLimiting[0]`. */
  readonly path: string
  readonly limit: number
  readonly windowMs: number
  readonly algorithm: Algorithm
  readonly key: KeySpec
  readonly onRedisDown: OnRedisDown
  readonly errorStatus: number | undefined
  readonly errorBody: unknown
  readonly bucket: string | undefined
  readonly ipv6PrefixBits: number
}

export const DEFAULT_ON_REDIS_DOWN: OnRedisDown = 'local'
export const DEFAULT_IPV6_PREFIX_BITS = 64

const KNOWN = new Set(['type', 'maxRequests', 'duration', 'limit', 'windowMs', 'algorithm', 'key', 'onRedisDown', 'errorStatus', 'errorBody', 'bucket', 'ipv6PrefixBits'])
const ON_REDIS_DOWN = new Set<string>(['failOpen', 'failClosed', 'local'])

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function positiveInt (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1
}

/** True for the values that mean "no rate limiting here". */
export function isOff (v: unknown): boolean {
  return v === 'none' || v === false || (Array.isArray(v) && v.length === 0)
}

/**
 * Validates a `rateLimiting` value found at `base` (path segments); returns the
 * limits, and pushes every problem to `issues`.
 */
export function parseRateLimiting (value: unknown, base: readonly string[], issues: ConfigIssue[]): LimitSpec[] {
  if (value === undefined || isOff(value)) return []
  const list = Array.isArray(value) ? value : [value]
  const out: LimitSpec[] = []
  list.forEach((item, i) => {
    const segs = Array.isArray(value) ? [...base, String(i)] : [...base]
    const spec = parseOne(item, segs, issues)
    if (spec !== undefined) out.push(spec)
  })
  return out
}

function parseOne (v: unknown, segs: string[], issues: ConfigIssue[]): LimitSpec | undefined {
  const at = (k?: string): string => formatPath(k === undefined ? segs : [...segs, k])
  const before = issues.length
  if (!isObject(v)) {
    issues.push({ path: at(), message: 'expected a limit object ({ limit, windowMs, … }), a list of them, or "none"' })
    return undefined
  }
  for (const k of Object.keys(v)) if (!KNOWN.has(k)) issues.push({ path: at(k), message: 'unknown key' })
  if (v.type !== undefined && v.type !== 'ip') issues.push({ path: at('type'), message: 'expected "ip" (Prism\'s only type); use `key` to count by something else' })
  if (v.limit !== undefined && v.maxRequests !== undefined) issues.push({ path: at('maxRequests'), message: 'give `limit` or `maxRequests`, not both' })
  if (v.windowMs !== undefined && v.duration !== undefined) issues.push({ path: at('duration'), message: 'give `windowMs` or `duration`, not both' })
  const limitKey = v.limit !== undefined ? 'limit' : 'maxRequests'
  const limit = v[limitKey]
  if (limit === undefined) issues.push({ path: at('limit'), message: 'required (requests per window; Prism: `maxRequests`)' })
  else if (!positiveInt(limit)) issues.push({ path: at(limitKey), message: 'expected an integer >= 1' })
  const windowKey = v.windowMs !== undefined ? 'windowMs' : 'duration'
  const windowMs = v[windowKey]
  if (windowMs === undefined) issues.push({ path: at('windowMs'), message: 'required (milliseconds; Prism: `duration`)' })
  else if (!positiveInt(windowMs)) issues.push({ path: at(windowKey), message: 'expected an integer number of milliseconds >= 1' })
  if (v.algorithm !== undefined && v.algorithm !== 'gcra' && v.algorithm !== 'sliding-window') issues.push({ path: at('algorithm'), message: 'expected "gcra" or "sliding-window"' })
  if (v.onRedisDown !== undefined && !ON_REDIS_DOWN.has(v.onRedisDown as string)) issues.push({ path: at('onRedisDown'), message: 'expected "failOpen", "failClosed" or "local"' })
  if (v.errorStatus !== undefined && !(typeof v.errorStatus === 'number' && Number.isInteger(v.errorStatus) && v.errorStatus >= 400 && v.errorStatus <= 599)) {
    issues.push({ path: at('errorStatus'), message: 'expected an HTTP status from 400 to 599' })
  }
  if (v.bucket !== undefined && (typeof v.bucket !== 'string' || v.bucket === '' || v.bucket.includes(':'))) issues.push({ path: at('bucket'), message: 'expected a non-empty name without ":"' })
  if (v.ipv6PrefixBits !== undefined && !(typeof v.ipv6PrefixBits === 'number' && Number.isInteger(v.ipv6PrefixBits) && v.ipv6PrefixBits >= 1 && v.ipv6PrefixBits <= 128)) {
    issues.push({ path: at('ipv6PrefixBits'), message: 'expected an integer from 1 to 128' })
  }
  const key = parseKey(v.key, at('key'), issues)
  if (v.type === 'ip' && key !== undefined && key.kind !== 'ip') issues.push({ path: at('key'), message: 'Prism\'s `type: "ip"` counts per address; drop `type` to count by another key' })
  if (issues.length > before || key === undefined) return undefined
  return {
    path: at(),
    limit: limit as number,
    windowMs: windowMs as number,
    // Prism counted the requests inside `duration`: a sliding window.
    algorithm: (v.algorithm as Algorithm | undefined) ?? (v.type === 'ip' ? 'sliding-window' : 'gcra'),
    key,
    onRedisDown: (v.onRedisDown as OnRedisDown | undefined) ?? DEFAULT_ON_REDIS_DOWN,
    errorStatus: v.errorStatus as number | undefined,
    errorBody: v.errorBody,
    bucket: v.bucket as string | undefined,
    ipv6PrefixBits: (v.ipv6PrefixBits as number | undefined) ?? DEFAULT_IPV6_PREFIX_BITS
  }
}

function parseKey (k: unknown, path: string, issues: ConfigIssue[]): KeySpec | undefined {
  const bad = (): undefined => {
    issues.push({ path, message: 'expected "ip", "route", { header: name }, { claim: name } or { hook: (request) => string }' })
    return undefined
  }
  if (k === undefined || k === 'ip') return { kind: 'ip' }
  if (k === 'route') return { kind: 'route' }
  if (!isObject(k) || Object.keys(k).length !== 1) return bad()
  if (k.header !== undefined) {
    return typeof k.header === 'string' && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(k.header) ? { kind: 'header', name: k.header.toLowerCase() } : bad()
  }
  if (k.claim !== undefined) return typeof k.claim === 'string' && k.claim !== '' ? { kind: 'claim', name: k.claim } : bad()
  if (k.hook !== undefined) return typeof k.hook === 'function' ? { kind: 'hook', fn: k.hook as RateLimitKeyHook } : bad()
  return bad()
}
