/**
 * Response caching (PRODUCT §4.3): `caching` at `http` level and per route
 * (Prism's `{ expiry, varyBy, maxSize }` plus Switchyard's keys; see
 * cache/options.ts and docs/policies/caching.md). Two tiers — an in-process
 * LRU bounded in bytes, and Redis — with single-flight fills within and across
 * instances, stale-while-revalidate, stale-if-error, tags, invalidation that
 * reaches every instance (`gateway.api('cache')`), and `Cache-Status`.
 *
 * The policy runs after auth and rate limiting and wraps the route's handler,
 * so what it stores is the final, merged response.
 *
 * @example
 * // config
 * http: {
 *   caching: { ttlMs: 60_000, staleWhileRevalidateMs: 30_000, varyBy: { headers: ['accept-language'] } },
 *   routes: { '/products/:id': { GET: { services: { catalogue: { type: 'http', url: 'http://catalogue/products/:id' } } } } }
 * }
 * // invalidation
 * await gateway.api<CacheApi>('cache')!.invalidate({ tags: ['product-42'] })
 */
import type { Policy, PolicyDeps, RouteTarget } from './types.js'
import { configError, resolveSettings } from './cache/options.js'
import { RouteCache } from './cache/route-cache.js'
import { runtimeFor } from './cache/runtime.js'
import { formatPath } from '../config/validate.js'

export type { CacheApi, CacheStats } from './cache/runtime.js'
export type { CachingConfig } from './cache/options.js'
export type { InvalidateSelector } from './cache/entry.js'

/** Config keys this module implements; start refuses a key no module implements. */
export const keys: readonly string[] = ['caching']

const DEFAULT_BODY_LIMIT = 1024 * 1024

/** The cache policy of a route, or undefined when the route is not cached (no `caching`, `caching: false`, or a method not cached). */
export function cache (target: RouteTarget, deps: PolicyDeps): Policy | undefined {
  const routePath = ['http', 'routes', target.path, target.method]
  // Prism has no per-service caching; the key validates (the service schema lists it) but means nothing.
  const perService = Object.entries(target.route.services)
    .filter(([, svc]) => (svc as { caching?: unknown }).caching !== undefined)
    .map(([name]) => ({ path: formatPath([...routePath, 'services', name, 'caching']), message: 'caching is set on a route or in http, not on a service' }))
  if (perService.length > 0) throw configError(perService)
  const settings = resolveSettings(deps.config.http?.caching, target.route.caching, routePath)
  if (settings === undefined) return undefined
  const m = target.method
  if (m !== 'ALL' && !settings.methods.has(m) && !(m === 'GET' && settings.methods.has('HEAD'))) return undefined
  const bodyLimit = target.route.bodyLimitBytes ?? deps.config.server?.bodyLimitBytes ?? DEFAULT_BODY_LIMIT
  return new RouteCache(settings, runtimeFor(deps), { route: target.path, method: m, bodyLimit }).policy()
}
