/**
 * The `caching` options (PRODUCT §4.3): Prism's `{ expiry, varyBy, maxSize }`
 * plus Switchyard's own keys, at `http.caching` and per route. The route's
 * object is laid over the http-level one key by key (`varyBy` as a whole), and
 * `caching: false` or `"none"` turns caching off for a route. Checked once at
 * start: every problem is reported with its config path in one
 * GW_ERR_CONFIG_INVALID.
 */
import type { GatewayError } from '@switchyard/protocol'
import { configInvalid, formatPath, type ConfigIssue } from '../../config/validate.js'

/** What `caching` may hold (http level, or a route; a route may also say `false` or `"none"`). */
export interface CachingConfig {
  /**
   * Prism's freshness lifetime, in milliseconds; `ttlMs` is the same and wins.
   * Used when the response's `Cache-Control` has no `s-maxage` or `max-age`.
   */
  expiry?: number
  /** Freshness lifetime in milliseconds when the response sets none. @default none (only responses with `s-maxage`/`max-age` are stored) */
  ttlMs?: number
  /** Request parts that tell entries of one URL apart. */
  varyBy?: {
    /** Request header names (case-insensitive). */
    headers?: string[]
    /** Query parameter names: when given, the key holds only these parameters instead of the whole sorted query. */
    query?: string[]
    /** Fields (dot paths) of a JSON or form request body, for cached methods that carry one; by default the whole body is hashed. */
    body?: string[]
    /** Verified JWT claims (dot paths), from the auth policy. */
    claims?: string[]
  }
  /** Prism: the largest response body stored, in bytes; bigger responses pass through uncached. @default 5000000 */
  maxSize?: number
  /** How long a stale entry may still be served while one background request refreshes it, in ms. @default 0 */
  staleWhileRevalidateMs?: number
  /** How long a stale entry may still be served when the upstream fails or answers 5xx, in ms. @default 0 */
  staleIfErrorMs?: number
  /** Methods whose responses are cached (HEAD reads and fills GET's entry). @default ["GET", "HEAD"] */
  methods?: string[]
  /** Statuses that may be stored. @default every 2xx but 206 */
  statuses?: number[]
  /** The in-process tier: an LRU bounded in bytes; `false` (or `maxBytes: 0`) turns it off. @default { maxBytes: 67108864 } */
  memory?: false | { maxBytes?: number }
  /** How long one instance holds the lease to fill a missing entry, in ms; others wait at most this long for it. @default 5000 */
  lockMs?: number
  /** Tags added to every entry of the route (besides the response's `Cache-Tag` / `Surrogate-Key`). @default [] */
  tags?: string[]
  /** What a request's `Cache-Control: no-cache` (or `max-age=0`, or `Pragma: no-cache`) does: refetch and store, or nothing. @default "revalidate" */
  requestNoCache?: 'revalidate' | 'ignore'
}

/** How the in-process tier is chosen for a route. */
export type MemoryScope = { kind: 'off' } | { kind: 'shared' } | { kind: 'own', maxBytes: number }

/** The checked, defaulted options of one route. */
export interface CacheSettings {
  readonly ttlMs: number | undefined
  readonly swrMs: number
  readonly sieMs: number
  readonly maxSize: number
  readonly methods: ReadonlySet<string>
  readonly statuses: ReadonlySet<number>
  readonly varyHeaders: readonly string[]
  /** undefined: the whole sorted query is in the key. */
  readonly varyQuery: readonly string[] | undefined
  /** undefined: the whole body is hashed (for methods with a body). */
  readonly varyBody: readonly string[] | undefined
  readonly varyClaims: readonly string[]
  readonly memory: MemoryScope
  readonly lockMs: number
  readonly tags: readonly string[]
  readonly requestNoCache: 'revalidate' | 'ignore'
  /** The key tells callers apart (an Authorization header or claims are in it). */
  readonly variesByIdentity: boolean
}

export const DEFAULT_MAX_SIZE = 5_000_000
export const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024
export const DEFAULT_LOCK_MS = 5000
export const DEFAULT_METHODS = ['GET', 'HEAD'] as const
const MAX_TAG_LENGTH = 256

const KNOWN_KEYS = new Set(['expiry', 'ttlMs', 'varyBy', 'maxSize', 'staleWhileRevalidateMs', 'staleIfErrorMs', 'methods', 'statuses', 'memory', 'lockMs', 'tags', 'requestNoCache'])
const VARY_KEYS = new Set(['headers', 'query', 'body', 'claims'])
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Whether a `caching` value turns caching off (`false`, `"none"`). */
export function isOff (v: unknown): boolean {
  return v === false || v === 'none'
}

class Checker {
  readonly issues: ConfigIssue[] = []
  constructor (readonly base: readonly string[]) {}

  add (segments: readonly string[], message: string): void {
    this.issues.push({ path: formatPath([...this.base, ...segments]), message })
  }

  ms (obj: Record<string, unknown>, key: string, min: number): number | undefined {
    const v = obj[key]
    if (v === undefined) return undefined
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) { this.add([key], `expected an integer ≥ ${min} (milliseconds)`); return undefined }
    return v
  }

  strings (obj: Record<string, unknown>, segments: string[], key: string): string[] | undefined {
    const v = obj[key]
    if (v === undefined) return undefined
    if (!Array.isArray(v) || v.some(x => typeof x !== 'string' || x === '')) { this.add([...segments, key], 'expected a list of non-empty strings'); return undefined }
    return v as string[]
  }
}

/** Checks one `caching` object (http level or route level) and reports problems under `path`. */
function check (value: unknown, path: readonly string[], allowOff: boolean): { cfg: CachingConfig | undefined, issues: ConfigIssue[] } {
  const c = new Checker(path)
  if (allowOff && isOff(value)) return { cfg: undefined, issues: [] }
  if (!isObject(value)) {
    c.add([], allowOff ? 'expected a caching object, false or "none"' : 'expected a caching object')
    return { cfg: undefined, issues: c.issues }
  }
  for (const k of Object.keys(value)) if (!KNOWN_KEYS.has(k)) c.add([k], 'unknown key')
  c.ms(value, 'expiry', 1)
  c.ms(value, 'ttlMs', 1)
  c.ms(value, 'maxSize', 1)
  c.ms(value, 'staleWhileRevalidateMs', 0)
  c.ms(value, 'staleIfErrorMs', 0)
  c.ms(value, 'lockMs', 10)
  if (value.varyBy !== undefined) {
    if (!isObject(value.varyBy)) c.add(['varyBy'], 'expected { headers?, query?, body?, claims? }')
    else {
      for (const k of Object.keys(value.varyBy)) if (!VARY_KEYS.has(k)) c.add(['varyBy', k], 'unknown key')
      for (const k of VARY_KEYS) c.strings(value.varyBy, ['varyBy'], k)
    }
  }
  const methods = c.strings(value, [], 'methods')
  if (methods !== undefined) {
    methods.forEach((m, i) => { if (!METHODS.has(m.toUpperCase())) c.add(['methods', String(i)], `unknown method "${m}"`) })
  }
  if (value.statuses !== undefined) {
    const s = value.statuses
    if (!Array.isArray(s) || s.some(x => typeof x !== 'number' || !Number.isInteger(x) || x < 100 || x > 599)) c.add(['statuses'], 'expected a list of HTTP statuses (100–599)')
  }
  if (value.memory !== undefined && value.memory !== false) {
    if (!isObject(value.memory)) c.add(['memory'], 'expected { maxBytes } or false')
    else {
      for (const k of Object.keys(value.memory)) if (k !== 'maxBytes') c.add(['memory', k], 'unknown key')
      const mb = value.memory.maxBytes
      if (mb !== undefined && (typeof mb !== 'number' || !Number.isInteger(mb) || mb < 0)) c.add(['memory', 'maxBytes'], 'expected an integer ≥ 0 (bytes)')
    }
  }
  const tags = c.strings(value, [], 'tags')
  if (tags !== undefined) {
    tags.forEach((t, i) => { if (/[\s,]/.test(t) || t.length > MAX_TAG_LENGTH) c.add(['tags', String(i)], `a tag has no spaces or commas and at most ${MAX_TAG_LENGTH} characters`) })
  }
  if (value.requestNoCache !== undefined && value.requestNoCache !== 'revalidate' && value.requestNoCache !== 'ignore') c.add(['requestNoCache'], 'expected "revalidate" or "ignore"')
  return { cfg: value as CachingConfig, issues: c.issues }
}

export function configError (issues: readonly ConfigIssue[]): GatewayError {
  return configInvalid(issues)
}

/**
 * The effective settings of one route, or undefined when the route is not
 * cached. Throws GW_ERR_CONFIG_INVALID naming every bad path.
 */
export function resolveSettings (httpCaching: unknown, routeCaching: unknown, routePath: readonly string[]): CacheSettings | undefined {
  const issues: ConfigIssue[] = []
  const top = httpCaching === undefined ? { cfg: undefined, issues: [] } : check(httpCaching, ['http', 'caching'], false)
  issues.push(...top.issues)
  const own = routeCaching === undefined ? { cfg: undefined, issues: [] } : check(routeCaching, [...routePath, 'caching'], true)
  issues.push(...own.issues)
  if (issues.length > 0) throw configError(issues)
  if (isOff(routeCaching)) return undefined
  const merged: CachingConfig | undefined = top.cfg === undefined && own.cfg === undefined ? undefined : { ...top.cfg, ...own.cfg }
  if (merged === undefined) return undefined

  const vary = merged.varyBy ?? {}
  const varyHeaders = [...new Set((vary.headers ?? []).map(h => h.toLowerCase()))].sort()
  const varyClaims = [...new Set(vary.claims ?? [])].sort()
  let memory: MemoryScope
  if (own.cfg?.memory !== undefined) {
    // A route that sizes its own in-process tier gets its own LRU.
    const m = own.cfg.memory
    const bytes = m === false ? 0 : m.maxBytes ?? DEFAULT_MEMORY_BYTES
    memory = bytes === 0 ? { kind: 'off' } : { kind: 'own', maxBytes: bytes }
  } else {
    const m = top.cfg?.memory
    memory = m === false || (m !== undefined && m.maxBytes === 0) ? { kind: 'off' } : { kind: 'shared' }
  }
  const statuses = merged.statuses !== undefined
    ? new Set(merged.statuses)
    : new Set(Array.from({ length: 100 }, (_, i) => 200 + i).filter(s => s !== 206))
  return {
    // Each level's ttlMs (or Prism's expiry) as one setting: a route's expiry beats the http-level ttlMs.
    ttlMs: own.cfg?.ttlMs ?? own.cfg?.expiry ?? top.cfg?.ttlMs ?? top.cfg?.expiry,
    swrMs: merged.staleWhileRevalidateMs ?? 0,
    sieMs: merged.staleIfErrorMs ?? 0,
    maxSize: merged.maxSize ?? DEFAULT_MAX_SIZE,
    methods: new Set((merged.methods ?? DEFAULT_METHODS).map(m => m.toUpperCase())),
    statuses,
    varyHeaders,
    varyQuery: vary.query === undefined ? undefined : [...new Set(vary.query)].sort(),
    varyBody: vary.body === undefined ? undefined : [...new Set(vary.body)].sort(),
    varyClaims,
    memory,
    lockMs: merged.lockMs ?? DEFAULT_LOCK_MS,
    tags: [...new Set(merged.tags ?? [])],
    requestNoCache: merged.requestNoCache ?? 'revalidate',
    variesByIdentity: varyHeaders.includes('authorization') || varyClaims.length > 0
  }
}

/** The size of the gateway-wide in-process LRU, from `http.caching.memory`. */
export function sharedMemoryBytes (httpCaching: unknown): number {
  if (!isObject(httpCaching) || !isObject(httpCaching.memory)) return DEFAULT_MEMORY_BYTES
  const mb = httpCaching.memory.maxBytes
  return typeof mb === 'number' ? mb : DEFAULT_MEMORY_BYTES
}
