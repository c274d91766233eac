/**
 * The rate limiter's store contract (STYLE §2: state behind a small
 * interface with a memory and a Redis implementation). One call decides one
 * request against every limit of its route: either every limit admits it and
 * each is charged, or it is refused and none is charged.
 */

export type Algorithm = 'gcra' | 'sliding-window'

/** One limit to check for one request. */
export interface LimitCheck {
  /** The full state key (`rateLimitKey`). */
  readonly key: string
  readonly algorithm: Algorithm
  /** Requests admitted per window. */
  readonly limit: number
  readonly windowMs: number
}

/** How one limit stands after a decision. */
export interface LimitResult {
  /** Requests it still admits after this one (0 when it refused). */
  remaining: number
  /** Milliseconds until its full quota is back. */
  resetMs: number
  /** Milliseconds until it admits a request; 0 when it admitted this one. */
  retryAfterMs: number
}

export interface Decision {
  allowed: boolean
  /** In the order of the checks. */
  results: LimitResult[]
}

export interface LimitStore {
  /**
   * Decides one request. MUST be atomic per call: concurrent calls never
   * admit more than a limit allows. A Redis store rejects when Redis is
   * unreachable. `checks` is not modified, and may be passed again.
   */
  consume: (checks: readonly LimitCheck[]) => Decision | Promise<Decision>
}
