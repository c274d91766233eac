/**
 * Every route's policies, in a fixed order (STYLE §2; declaration order in the
 * config does not matter):
 *
 *   ip allow/deny → CORS → JWT auth → rate limit → cache → [route: stages, merge]
 *
 * and per service, around its transport: circuit breaker. Each factory returns
 * undefined when its policy is not configured for the route, so a route pays
 * only for what it uses.
 */
import { ipList, keys as ipListKeys } from './ip-list.js'
import { cors, keys as corsKeys } from './cors.js'
import { authJwt, keys as authKeys } from './auth-jwt.js'
import { rateLimit, keys as rateLimitKeys } from './rate-limit.js'
import { cache, keys as cacheKeys } from './cache.js'
import { keys as breakerKeys } from './circuit-breaker.js'
import type { Policy, PolicyDeps, RouteTarget } from './types.js'

export function routePolicies (target: RouteTarget, deps: PolicyDeps): Policy[] {
  const out: Policy[] = []
  for (const factory of [ipList, cors, authJwt, rateLimit, cache]) {
    const p = factory(target, deps)
    if (p !== undefined) out.push(p)
  }
  return out
}

export { circuitBreaker } from './circuit-breaker.js'

/** Policy config keys some module implements (`authentication`, `caching`, …). */
export const SUPPORTED_POLICY_KEYS: ReadonlySet<string> = new Set([...ipListKeys, ...corsKeys, ...authKeys, ...rateLimitKeys, ...cacheKeys, ...breakerKeys])
export { compose, composeDirect, settle, transparent, type DirectHandler, type Handler, type Policy, type PolicyDeps, type RouteTarget } from './types.js'
