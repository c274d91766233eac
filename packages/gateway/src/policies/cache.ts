/**
 * Response caching (PRODUCT §4.3). Not built yet: config keys for it are refused at start
 * (config/validate.ts `unsupportedUses`), so this factory never sees them.
 */
import type { Policy, PolicyDeps, RouteTarget } from './types.js'

/** Config keys this module implements ('caching' once built); start refuses a key no module implements. */
export const keys: readonly string[] = []

export function cache (_target: RouteTarget, _deps: PolicyDeps): Policy | undefined {
  return undefined
}
