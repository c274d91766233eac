/**
 * Circuit breakers per service (PRODUCT §4.4). Not built yet: config keys for
 * it are refused at start (config/validate.ts `unsupportedUses`).
 */
import type { ServiceCall } from '../transports/types.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import type { PolicyDeps, RouteTarget } from './types.js'

export type Invoke = (call: ServiceCall) => Promise<ServiceResponse>

/** Wraps one service's calls, or returns undefined when the service has no breaker. */
/** Config keys this module implements ('circuitBreaker' once built); start refuses a key no module implements. */
export const keys: readonly string[] = []

export function circuitBreaker (_target: RouteTarget, _service: string, _deps: PolicyDeps): ((invoke: Invoke) => Invoke) | undefined {
  return undefined
}
