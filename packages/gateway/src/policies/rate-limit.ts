/**
 * Rate limiting (PRODUCT §4.2). Each route's limits are decided in one atomic
 * Redis script on Redis's clock (rateLimit-n.lua), so a limit is exact across
 * any number of gateway instances; in memory when the config has no Redis.
 * Every answer carries the draft-06 `RateLimit-*` headers; a refusal is 429
 * GW_ERR_RATE_LIMITED with `Retry-After`. While Redis is unreachable each
 * limit follows its `onRedisDown`. docs/policies/rate-limiting.md.
 *
 * @example
 * rateLimiting: [
 *   { limit: 5, windowMs: 60_000 },                                  // per client address
 *   { limit: 1000, windowMs: 3_600_000, key: { header: 'x-api-key' } }
 * ]
 */
import { Readable } from 'node:stream'
import { GatewayError, isGatewayError } from '@switchyard/protocol'
import { formatPath, type ConfigIssue } from '../config/validate.js'
import { ensureBuffered, parseQuery, parseRequestBody } from '../pipeline/body.js'
import { copyOwn } from '../pipeline/objects.js'
import { addResponseHeaders, errorResponse } from '../pipeline/respond.js'
import type { GatewayRequest, GatewayResponse } from '../pipeline/types.js'
import { policyHeader, rateLimitHeaders } from './rate-limit/headers.js'
import { addressKey, keyValue, rateLimitKey } from './rate-limit/keys.js'
import { isOff, parseRateLimiting, type KeySpec, type LimitSpec, type RateLimitKeyHook, type RateLimitKeyRequest } from './rate-limit/options.js'
import { globalLimits, rateLimitRegistry, throwIssues, type RateLimitRegistry } from './rate-limit/registry.js'
import type { Decision, LimitCheck } from './rate-limit/store.js'
import { settle, transparent, type DirectHandler, type Handler, type Policy, type PolicyDeps, type RouteTarget } from './types.js'
import type { DirectFailed, DirectSent } from '../pipeline/stream.js'
import type { Waiting } from './rate-limit/redis-store.js'

export type { RateLimitConfig, RateLimitingConfig, RateLimitKey, RateLimitKeyHook, RateLimitKeyRequest, OnRedisDown } from './rate-limit/options.js'
export type { RateLimitsApi } from './rate-limit/registry.js'

/** Config keys this module implements; start refuses a key no module implements. */
export const keys: readonly string[] = ['rateLimiting']

const DEFAULT_BODY_LIMIT = 1024 * 1024

/** Most client addresses whose checks a route keeps made; past it, they are made afresh. */
const MAX_CACHED_ADDRESSES = 10_000

/** One limit of one route, ready for requests. */
interface RouteLimit {
  readonly spec: LimitSpec
  /** Its position in the route's list. */
  readonly index: number
  /** The counter's name: the shared `bucket`, or this route and limit. */
  readonly bucket: string
  /** Its Redis keys up to the value: `rateLimitKey(prefix, bucket, algorithm, '')`. */
  readonly keyPrefix: string
  readonly algorithm: LimitSpec['algorithm']
  readonly limit: number
  readonly windowMs: number
}

/** The rate-limit policy of a route, or undefined when none applies. */
export function rateLimit (target: RouteTarget, deps: PolicyDeps): Policy | undefined {
  const issues: ConfigIssue[] = []
  const routePath = ['http', 'routes', target.path, target.method]
  // Rate limits are per route: a service-level `rateLimiting` would be silently ignored.
  for (const [name, svc] of Object.entries(target.route.services)) {
    if ((svc as Record<string, unknown>).rateLimiting !== undefined) {
      throw new GatewayError('GW_ERR_CONFIG_UNSUPPORTED', {
        message: `${formatPath([...routePath, 'services', name, 'rateLimiting'])}: rate limits apply to routes; move it to the route (or to \`http\`)`
      })
    }
  }
  const global = globalLimits(deps)
  const own = (target.route as Record<string, unknown>).rateLimiting
  const specs = own === undefined ? global : isOff(own) ? [] : parseRateLimiting(own, [...routePath, 'rateLimiting'], issues)
  throwIssues(issues)
  if (specs.length === 0) return undefined
  const reg = rateLimitRegistry(deps)
  for (const s of specs) reg.claimBucket(s, issues)
  throwIssues(issues)
  const limits: RouteLimit[] = specs.map((spec, i) => {
    const bucket = spec.bucket ?? `${target.method} ${target.path}#${i}`
    return { spec, index: i, bucket, keyPrefix: rateLimitKey(reg.deps.prefix, bucket, spec.algorithm, ''), algorithm: spec.algorithm, limit: spec.limit, windowMs: spec.windowMs }
  })
  return routeLimiter(target, limits, reg)
}

function routeLimiter (target: RouteTarget, limits: readonly RouteLimit[], reg: RateLimitRegistry): Policy {
  const count = reg.counter(`${target.method} ${target.path}`)
  const policy = policyHeader(limits)
  const failClosed = limits.some(l => l.spec.onRedisDown === 'failClosed')
  const localLimits = limits.filter(l => l.spec.onRedisDown === 'local')
  const localPolicy = policyHeader(localLimits)
  const bodyLimit = target.route.bodyLimitBytes ?? reg.deps.config.server?.bodyLimitBytes ?? DEFAULT_BODY_LIMIT
  const needsRequestView = limits.some(l => l.spec.key.kind === 'hook')
  // When every limit counts by client address (or by route), a client's checks are the same
  // on every request: made once per address and passed as the same array, which also lets
  // the Redis store name them once for a burst of that client's requests.
  const byAddress = limits.every(l => l.spec.key.kind === 'ip' || l.spec.key.kind === 'route') ? new Map<string, LimitCheck[]>() : undefined

  /** The checks of a client address (for `byAddress`), made on its first request. */
  function addressChecks (greq: GatewayRequest): LimitCheck[] {
    const checks = checksFor(valuesOf(greq) as string[], limits)
    if (byAddress!.size >= MAX_CACHED_ADDRESSES) byAddress!.clear()
    byAddress!.set(greq.remoteAddress, checks)
    return checks
  }

  /** The value each limit counts by, computed once per request (synchronously unless a hook is involved). */
  function valuesOf (greq: GatewayRequest): string[] | Promise<string[]> {
    if (!needsRequestView) return limits.map(l => keyOf(l.spec.key, l.spec.ipv6PrefixBits, greq))
    const view = keyRequest(greq, bodyLimit)
    return (async () => {
      const out: string[] = []
      for (const l of limits) out.push(l.spec.key.kind === 'hook' ? await hookKey(l.spec.key.fn, l.spec.ipv6PrefixBits, greq, view) : keyOf(l.spec.key, l.spec.ipv6PrefixBits, greq))
      return out
    })()
  }

  function checksFor (values: readonly string[], subset: readonly RouteLimit[]): LimitCheck[] {
    return subset.map(l => ({ key: l.keyPrefix + values[l.index]!, algorithm: l.algorithm, limit: l.limit, windowMs: l.windowMs }))
  }

  function refusal (greq: GatewayRequest, subset: readonly RouteLimit[], d: Decision, headers: Record<string, string>): GatewayResponse {
    let worst = 0
    d.results.forEach((r, i) => { if (r.retryAfterMs > d.results[worst]!.retryAfterMs) worst = i })
    const spec = subset[worst]!.spec
    greq.log.debug({ reqId: greq.id, limit: spec.path }, 'rate limited')
    return refusalResponse(greq, spec.errorStatus, spec.errorBody, headers)
  }

  /** Redis's (or the memory store's) decision: the refusal, or undefined with the headers added to the answer. */
  function afterDecision (greq: GatewayRequest, d: Decision): GatewayResponse | undefined {
    const headers = rateLimitHeaders(limits, policy, d)
    if (!d.allowed) { count.limited++; return refusal(greq, limits, d, headers) }
    count.allowed++
    addResponseHeaders(greq, headers)
    return undefined
  }

  /** Redis could not decide: each limit follows its onRedisDown. The refusal, or undefined to go on. */
  function afterRedisDown (greq: GatewayRequest, values: string[] | undefined): GatewayResponse | undefined {
    if (failClosed) {
      count.redis_down_closed++
      return errorResponse(new GatewayError('GW_ERR_REDIS_UNAVAILABLE', { message: 'Rate limits cannot be checked while Redis is unreachable' }), greq.id, { 'retry-after': '1' })
    }
    if (localLimits.length === 0) {
      count.redis_down_open++
      return undefined
    }
    // Values by address are computed synchronously (no hook).
    const d = reg.local.consume(checksFor(values ?? valuesOf(greq) as string[], localLimits))
    const headers = rateLimitHeaders(localLimits, localPolicy, d)
    if (!d.allowed) { count.local_limited++; return refusal(greq, localLimits, d, headers) }
    count.local_allowed++
    addResponseHeaders(greq, headers)
    return undefined
  }

  /** A failed decision: Redis's failure is logged once and onRedisDown applies; the client's or a hook's error is the answer. */
  function afterFailure (greq: GatewayRequest, err: unknown, values: string[] | undefined): GatewayResponse | undefined {
    if (isGatewayError(err)) throw err
    reg.redisDown(err)
    return afterRedisDown(greq, values)
  }

  function rateLimitPolicy (next: Handler): Handler {
    return async function rateLimited (greq: GatewayRequest): Promise<GatewayResponse> {
      const redis = reg.redis
      let values: string[] | undefined
      let checks: LimitCheck[]
      if (byAddress !== undefined) {
        checks = byAddress.get(greq.remoteAddress) ?? addressChecks(greq)
      } else {
        const v = valuesOf(greq)
        values = Array.isArray(v) ? v : await v
        checks = checksFor(values, limits)
      }
      let refused: GatewayResponse | undefined
      if (redis === undefined) {
        refused = afterDecision(greq, reg.memory.consume(checks))
      } else {
        if (!redis.ready && !reg.everReady()) await reg.firstReady()
        let d: Decision | undefined
        let failure: { err: unknown } | undefined
        try {
          if (!redis.ready) throw new Error('redis connection not ready')
          d = await redis.consume(checks)
        } catch (err) {
          failure = { err }
        }
        refused = failure === undefined ? afterDecision(greq, d!) : afterFailure(greq, failure.err, values)
      }
      if (refused !== undefined) return refused
      return await next(greq)
    }
  }

  // Transparent: the headers go out with whatever answer the route gives, the fast path's included.
  // The callback form serves the usual request (limits by address or route, Redis ready) with one
  // `LimitCall` and no promise of its own; anything else takes the promise path around `rest`.
  return transparent(rateLimitPolicy, function rateLimitDirect (next: DirectHandler, rest: Handler): DirectHandler {
    const full = rateLimitPolicy(rest)
    const steps: LimitSteps = { afterDecision, afterFailure }
    return function rateLimitedDirect (greq, done, fail) {
      const redis = reg.redis
      if (byAddress === undefined || redis === undefined || !redis.ready) {
        settle(full(greq), greq, done, fail)
        return
      }
      let checks: LimitCheck[]
      try {
        checks = byAddress.get(greq.remoteAddress) ?? addressChecks(greq)
      } catch (err) {
        fail(err, greq)
        return
      }
      redis.consumeWith(new LimitCall(checks, greq, next, done, fail, steps))
    }
  })
}

/** What a `LimitCall` does with its decision: the route limiter's own steps. */
interface LimitSteps {
  afterDecision: (greq: GatewayRequest, d: Decision) => GatewayResponse | undefined
  afterFailure: (greq: GatewayRequest, err: unknown, values: string[] | undefined) => GatewayResponse | undefined
}

/**
 * One request of the rate limit's callback form, waiting in the Redis store's
 * batch (`Waiting`): on its decision it answers the refusal or goes on to the
 * rest of the chain. Never throws: its errors go to `fail`.
 */
class LimitCall implements Waiting {
  readonly checks: readonly LimitCheck[]
  readonly #greq: GatewayRequest
  readonly #next: DirectHandler
  readonly #done: DirectSent
  readonly #fail: DirectFailed
  readonly #steps: LimitSteps

  constructor (checks: readonly LimitCheck[], greq: GatewayRequest, next: DirectHandler, done: DirectSent, fail: DirectFailed, steps: LimitSteps) {
    this.checks = checks
    this.#greq = greq
    this.#next = next
    this.#done = done
    this.#fail = fail
    this.#steps = steps
  }

  decided (d: Decision): void {
    let refused: GatewayResponse | undefined
    try {
      refused = this.#steps.afterDecision(this.#greq, d)
    } catch (err) {
      this.#fail(err, this.#greq)
      return
    }
    this.#go(refused)
  }

  failed (err: unknown): void {
    let refused: GatewayResponse | undefined
    try {
      refused = this.#steps.afterFailure(this.#greq, err, undefined)
    } catch (e) {
      this.#fail(e, this.#greq)
      return
    }
    this.#go(refused)
  }

  #go (refused: GatewayResponse | undefined): void {
    if (refused !== undefined) this.#done(refused, this.#greq)
    else this.#next(this.#greq, this.#done, this.#fail)
  }
}

/** 429 GW_ERR_RATE_LIMITED, or Prism's `errorStatus` / `errorBody`. */
function refusalResponse (greq: GatewayRequest, errorStatus: number | undefined, errorBody: unknown, headers: Record<string, string>): GatewayResponse {
  const retryAfterSeconds = Number(headers['retry-after'])
  if (errorBody === undefined) {
    return errorResponse(new GatewayError('GW_ERR_RATE_LIMITED', { statusCode: errorStatus, data: { retryAfterSeconds } }), greq.id, headers)
  }
  const text = typeof errorBody === 'string'
  return {
    status: errorStatus ?? 429,
    headers: Object.assign(copyOwn(headers), { 'content-type': text ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8' }),
    body: Buffer.from(text ? errorBody : JSON.stringify(errorBody))
  }
}

/** The value a limit counts by; a missing header or claim counts by the client address. */
function keyOf (key: KeySpec, ipv6Bits: number, greq: GatewayRequest): string {
  switch (key.kind) {
    case 'route': return 'route'
    case 'header': {
      const h = greq.headers[key.name]
      const raw = Array.isArray(h) ? h.join(', ') : h
      if (raw !== undefined && raw !== '') return keyValue('h', raw)
      break
    }
    case 'claim': {
      const raw = claimValue(greq.claims, key.name)
      if (raw !== undefined && raw !== '') return keyValue('c', raw)
      break
    }
  }
  return keyValue('ip', addressKey(greq.remoteAddress, ipv6Bits))
}

/** A hook's value; `undefined` or `''` counts by the client address. */
async function hookKey (fn: RateLimitKeyHook, ipv6Bits: number, greq: GatewayRequest, view: RateLimitKeyRequest): Promise<string> {
  const raw = await runKeyHook(fn, greq, view)
  return raw !== undefined && raw !== '' ? keyValue('k', raw) : keyValue('ip', addressKey(greq.remoteAddress, ipv6Bits))
}

/** A claim by exact name (`https://example.com/org` is one claim), else by dot path (`org.id`). */
function claimValue (claims: Record<string, unknown> | undefined, name: string): string | undefined {
  if (claims === undefined) return undefined
  let v: unknown = claims[name]
  if (v === undefined && name.includes('.')) {
    v = claims
    for (const part of name.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined
  }
  if (v === undefined || v === null) return undefined
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v)
}

async function runKeyHook (fn: RateLimitKeyHook, greq: GatewayRequest, view: RateLimitKeyRequest): Promise<string | undefined> {
  try {
    const v = await fn(view)
    return v === undefined || v === null ? undefined : String(v)
  } catch (err) {
    // The body's own errors (413, malformed JSON) are the client's, not the hook's.
    if (isGatewayError(err) && (err.code === 'GW_ERR_BODY_TOO_LARGE' || err.code === 'GW_ERR_BODY_MALFORMED')) throw err
    greq.log.error({ reqId: greq.id, err, hook: 'rateLimiting.key.hook' }, 'hook rateLimiting.key.hook threw')
    throw new GatewayError('GW_ERR_HOOK_FAILED', { cause: err, data: { hook: 'rateLimiting.key.hook' } })
  }
}

/** The request as a key hook sees it; the body is read only if the hook asks. */
function keyRequest (greq: GatewayRequest, bodyLimit: number): RateLimitKeyRequest {
  let parsed: Promise<unknown> | undefined
  return {
    id: greq.id,
    method: greq.method,
    route: greq.route,
    path: greq.path,
    params: greq.params,
    query: parseQuery(greq.rawQuery),
    headers: greq.headers,
    remoteAddress: greq.remoteAddress,
    claims: greq.claims,
    readBody: async () => {
      parsed ??= (async () => {
        const declared = greq.body.kind === 'stream' ? greq.body.length : undefined
        await ensureBuffered(greq, bodyLimit)
        if (greq.body.kind !== 'buffer') return undefined
        const bytes = greq.body.bytes
        // Handed on as a stream again: the streaming terminal sends only stream bodies.
        greq.body = { kind: 'stream', stream: Readable.from([bytes], { objectMode: false }), length: declared ?? bytes.length }
        return parseRequestBody(bytes, greq.headers['content-type'])
      })()
      return await parsed
    }
  }
}
