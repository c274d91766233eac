/**
 * CORS (PRODUCT §4.5). Not built yet: config keys for it are refused at start
 * (config/validate.ts `unsupportedUses`), so this factory never sees them.
 */
import type { Policy, PolicyDeps, RouteTarget } from './types.js'

export function cors (_target: RouteTarget, _deps: PolicyDeps): Policy | undefined {
  return undefined
}
