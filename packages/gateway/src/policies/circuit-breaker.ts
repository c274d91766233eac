/**
 * Circuit breakers per service (PRODUCT §4.4). Configured at `http`, route or
 * service level (the most specific wins). Closed → open after N consecutive
 * failures, a failure rate over a window, or Prism's `maxErrors` within
 * `duration`; open → a fast 503 GW_ERR_CIRCUIT_OPEN with `Retry-After`, the
 * service not called; half-open → exactly one probe; its success closes it.
 * Failures are timeouts, transport errors and 5xx — not 4xx, not the
 * breaker's own 503s. With `shared` (or `state: "redis"`) instances open
 * together through Redis. docs/policies/circuit-breakers.md.
 *
 * The wrapper guards either a transport's `invoke` (buffered routes) or the
 * streaming terminal handler of a single-HTTP-service route.
 *
 * @example
 * circuitBreaker: { consecutiveFailures: 5, openMs: 10_000 }
 * circuitBreaker: { maxErrors: 10, duration: 60_000 }            // Prism
 */
import type { ConfigIssue } from '../config/validate.js'
import type { ServiceConfig } from '../config/types.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import { DEFAULT_TIMEOUT_MS } from '../pipeline/route.js'
import type { ServiceCall } from '../transports/types.js'
import { isOff, parseCircuitBreaker } from './breaker/options.js'
import { breakerRegistry } from './breaker/registry.js'
import { throwIssues } from './rate-limit/registry.js'
import type { Handler, PolicyDeps, RouteTarget } from './types.js'

export type { CircuitBreakerConfig, CircuitBreakingConfig } from './breaker/options.js'
export type { BreakersApi, BreakerEvent, BreakerState } from './breaker/registry.js'
export type { BreakerSnapshot, CircuitState } from './breaker/machine.js'
export { BreakerMachine } from './breaker/machine.js'

export type Invoke = (call: ServiceCall) => Promise<ServiceResponse>

/** Guards an invoke or a handler; the same breaker either way. */
export type BreakerWrapper = <F extends Invoke | Handler>(fn: F) => F

/** Config keys this module implements; start refuses a key no module implements. */
export const keys: readonly string[] = ['circuitBreaker']

/**
 * The breaker wrapper of one service of a route, or undefined when the service
 * has none. Calling it again for the same service gives the same breaker.
 */
export function circuitBreaker (target: RouteTarget, service: string, deps: PolicyDeps): BreakerWrapper | undefined {
  const svc = target.route.services[service]
  if (svc === undefined) return undefined
  const routeSegs = ['http', 'routes', target.path, target.method]
  const levels: Array<[unknown, string[]]> = [
    [(svc as Record<string, unknown>).circuitBreaker, [...routeSegs, 'services', service, 'circuitBreaker']],
    [(target.route as Record<string, unknown>).circuitBreaker, [...routeSegs, 'circuitBreaker']],
    [(deps.config.http as Record<string, unknown> | undefined)?.circuitBreaker, ['http', 'circuitBreaker']]
  ]
  const issues: ConfigIssue[] = []
  const found = levels.find(([v]) => v !== undefined)
  if (found === undefined || isOff(found[0])) return undefined
  const spec = parseCircuitBreaker(found[0], found[1], issues)
  throwIssues(issues)
  if (spec === undefined) return undefined
  const shared = spec.shared ?? deps.config.state === 'redis'
  if (shared && deps.redis() === undefined) {
    throwIssues([{ path: `${spec.path}.shared`, message: 'a shared breaker needs Redis: configure `redis` (or `state: "redis"`)' }])
  }
  const timeoutMs = svc.timeout ?? target.route.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const breaker = breakerRegistry(deps).get(service, upstreamOf(svc), spec, shared, timeoutMs)
  breaker.routes.add(`${target.method} ${target.path}`)
  return (fn) => breaker.wrap(fn as (arg: ServiceCall | Parameters<Handler>[0]) => Promise<unknown>) as typeof fn
}

/** What the breaker protects: calls to the same upstream under the same name share it. */
function upstreamOf (svc: ServiceConfig): string {
  switch (svc.type) {
    case 'http': return JSON.stringify(svc.url)
    case 'redis': return `redis:${svc.requestChannel}`
    case 'redis-stream': return `stream:${svc.stream ?? ''}`
  }
}
