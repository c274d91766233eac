/**
 * The in-process store: used when the config has no Redis (`state: "memory"`)
 * and as the `onRedisDown: "local"` fallback. The same two algorithms as
 * rateLimit-n.lua, with the same answers, on this process's clock. Limits hold
 * per gateway instance only.
 */
import type { Decision, LimitCheck, LimitResult, LimitStore } from './store.js'

/**
 * The theoretical arrival time as `offset` ms after `stamp` (the clock when it
 * was written), not as an epoch time: at ~1.7e12 ms a double's step is
 * ~2.4e-4 ms, too coarse for the interval of a limit above ~4e6 per second.
 */
interface GcraEntry { kind: 'gcra', stamp: number, offset: number, expiresAt: number }
interface SlidingEntry { kind: 'sliding-window', times: number[], expiresAt: number }
type Entry = GcraEntry | SlidingEntry

export interface MemoryStoreOptions {
  /**
   * Most keys held; past it the least recently used key is dropped (its client
   * starts afresh).
   * @default 100000
   */
  maxKeys?: number
  /** The clock, epoch milliseconds. @default Date.now */
  now?: () => number
}

export class MemoryStore implements LimitStore {
  readonly #entries = new Map<string, Entry>()
  readonly #maxKeys: number
  readonly #now: () => number

  constructor (options: MemoryStoreOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 100_000
    this.#now = options.now ?? Date.now
  }

  get size (): number { return this.#entries.size }

  consume (checks: readonly LimitCheck[]): Decision {
    const now = this.#now()
    let allowed = true
    const results: LimitResult[] = []
    const pending: Array<() => void> = []
    for (const c of checks) {
      let e = this.#entries.get(c.key)
      if (e !== undefined && (e.expiresAt <= now || e.kind !== c.algorithm)) {
        this.#entries.delete(c.key)
        e = undefined
      }
      if (c.algorithm === 'gcra') {
        // Times relative to now, as in rateLimit-n.lua: tat is "ms from now".
        const interval = c.windowMs / c.limit
        const tat = Math.max(e?.kind === 'gcra' ? e.offset - (now - e.stamp) : 0, 0)
        const newTat = tat + interval
        const slack = c.windowMs - newTat
        if (slack < -interval * 1e-6) {
          allowed = false
          results.push({ remaining: 0, resetMs: Math.ceil(tat), retryAfterMs: Math.ceil(-slack) })
        } else {
          results.push({ remaining: Math.floor(slack / interval + 1e-6), resetMs: Math.ceil(newTat), retryAfterMs: 0 })
          // Expires on the next whole ms, as the Redis key's PX does (now + 6e-5 would round to now).
          pending.push(() => this.#set(c.key, { kind: 'gcra', stamp: now, offset: newTat, expiresAt: now + Math.max(1, Math.ceil(newTat)) }))
        }
      } else {
        const times = e?.kind === 'sliding-window' ? e.times : []
        const from = now - c.windowMs
        let drop = 0
        while (drop < times.length && times[drop]! <= from) drop++
        if (drop > 0) times.splice(0, drop)
        if (times.length >= c.limit) {
          allowed = false
          const freeing = times[times.length - c.limit]!
          results.push({ remaining: 0, resetMs: Math.ceil(times[times.length - 1]! + c.windowMs - now), retryAfterMs: Math.max(0, Math.ceil(freeing + c.windowMs - now)) })
        } else {
          results.push({ remaining: c.limit - times.length - 1, resetMs: Math.ceil(c.windowMs), retryAfterMs: 0 })
          pending.push(() => {
            times.push(now)
            this.#set(c.key, { kind: 'sliding-window', times, expiresAt: now + c.windowMs })
          })
        }
      }
    }
    if (allowed) for (const p of pending) p()
    return { allowed, results }
  }

  /** Drops every key, or those starting with `prefix`. */
  clear (prefix?: string): void {
    if (prefix === undefined) { this.#entries.clear(); return }
    for (const k of [...this.#entries.keys()]) if (k.startsWith(prefix)) this.#entries.delete(k)
  }

  /** Drops expired keys (called on a timer). */
  sweep (): void {
    const now = this.#now()
    for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k)
  }

  #set (key: string, e: Entry): void {
    // Re-inserted so Map order is least recently used first.
    this.#entries.delete(key)
    this.#entries.set(key, e)
    if (this.#entries.size > this.#maxKeys) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
  }
}
