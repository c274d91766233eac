/**
 * Response headers of the rate limiter: IETF draft-ietf-httpapi-ratelimit-headers-06
 * (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` in delta-seconds,
 * and `RateLimit-Policy` listing every limit of the route), plus RFC 9110
 * `Retry-After` on a refusal. With several limits, the three fields describe
 * the one closest to refusing (draft-06 §3: "the policy with the lowest
 * remaining quota").
 */
import type { Decision } from './store.js'

interface Quota { readonly limit: number, readonly windowMs: number }

/** `RateLimit-Policy` for a route's limits, e.g. `10;w=1, 1000;w=3600`. */
export function policyHeader (limits: readonly Quota[]): string {
  return limits.map(l => `${l.limit};w=${Math.max(1, Math.ceil(l.windowMs / 1000))}`).join(', ')
}

/** Whole seconds, rounded up, at least 1 when positive. */
export function seconds (ms: number): number {
  return ms <= 0 ? 0 : Math.max(1, Math.ceil(ms / 1000))
}

/**
 * The headers for a decision over `limits` (same order as the decision's
 * results). Lower-case names, ready for a GatewayResponse.
 */
export function rateLimitHeaders (limits: readonly Quota[], policy: string, d: Decision): Record<string, string> {
  let pick = 0
  if (d.allowed) {
    for (let i = 1; i < d.results.length; i++) {
      const r = d.results[i]!; const p = d.results[pick]!
      if (r.remaining < p.remaining || (r.remaining === p.remaining && r.resetMs > p.resetMs)) pick = i
    }
  } else {
    for (let i = 1; i < d.results.length; i++) if (d.results[i]!.retryAfterMs > d.results[pick]!.retryAfterMs) pick = i
  }
  const r = d.results[pick]!
  const h: Record<string, string> = {
    'ratelimit-policy': policy,
    'ratelimit-limit': String(limits[pick]!.limit),
    'ratelimit-remaining': String(Math.max(0, r.remaining)),
    'ratelimit-reset': String(seconds(r.resetMs))
  }
  if (!d.allowed) h['retry-after'] = String(Math.max(1, seconds(r.retryAfterMs)))
  return h
}
