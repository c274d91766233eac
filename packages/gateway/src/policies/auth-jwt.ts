/**
 * JWT authentication (PRODUCT §4.1). Not built yet: config keys for it are refused at start
 * (config/validate.ts `unsupportedUses`), so this factory never sees them.
 */
import type { Policy, PolicyDeps, RouteTarget } from './types.js'

/** Config keys this module implements ('authentication' once built); start refuses a key no module implements. */
export const keys: readonly string[] = []

export function authJwt (_target: RouteTarget, _deps: PolicyDeps): Policy | undefined {
  return undefined
}
