/**
 * Redis names of shared circuit breakers, as `<prefix>:<kind>:<name>` (STYLE §3).
 * They live here rather than in protocol/keys.ts because only the gateway
 * builds them; docs/policies/circuit-breakers.md lists them.
 */

/**
 * The shared state of one breaker: a hash (`state`, `gen`, `openUntil`,
 * `openedAt`, `probeUntil`, `by`), expiring a day after its last change.
 */
export function breakerKey (prefix: string, id: string): string {
  return `${prefix}:breaker:${id}`
}

/** The channel on which instances announce changes of shared breakers (JSON messages). */
export function breakerChannel (prefix: string): string {
  return `${prefix}:breakers:events`
}

/** How long a breaker hash outlives its last change, in milliseconds. */
export const BREAKER_KEY_TTL_MS = 24 * 60 * 60 * 1000
