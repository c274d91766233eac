/**
 * What the routes of one gateway share: the in-process tiers, the Redis tier,
 * the in-flight fills (single-flight within the instance), counters, and the
 * programmatic API (`gateway.api('cache')`).
 */
import { Counter } from 'prom-client'
import { GatewayError } from '@switchyard/protocol'
import { redisSettings } from '../../redis/connections.js'
import type { PolicyDeps } from '../types.js'
import type { GatewayResponse } from '../../pipeline/types.js'
import type { CacheStatus } from './http-semantics.js'
import { MemoryTier, type Entry, type InvalidateSelector } from './entry.js'
import { CacheKeys } from './key.js'
import { sharedMemoryBytes, type MemoryScope } from './options.js'
import { cleanSelector, RedisTier } from './redis-tier.js'

/** How long `invalidate` waits for the other instances to acknowledge, in ms. */
export const INVALIDATE_ACK_MS = 2000

/** What a request that joined another's fill gets. */
export type FlightOutcome =
  | { kind: 'entry', entry: Entry, status: CacheStatus, outcome: Outcome }
  | { kind: 'pass' }

/** How a request was answered, for the counters and `stats()`. */
export type Outcome = 'hit' | 'stale' | 'stale-if-error' | 'miss' | 'collapsed' | 'bypass'

const OUTCOMES: readonly Outcome[] = ['hit', 'stale', 'stale-if-error', 'miss', 'collapsed', 'bypass']

/**
 * A route's answers by outcome, as plain numbers: added to
 * `switchyard_cache_requests_total` when it is scraped (a labelled prom-client
 * `inc()` costs a hash of its labels on every call, ~1 µs of a cache hit).
 */
export class OutcomeCounts {
  readonly route: string
  hit = 0
  stale = 0
  'stale-if-error' = 0
  miss = 0
  collapsed = 0
  bypass = 0
  readonly reported: Record<Outcome, number> = { hit: 0, stale: 0, 'stale-if-error': 0, miss: 0, collapsed: 0, bypass: 0 }
  constructor (route: string) { this.route = route }
}

export interface CacheStats {
  /** Requests inside the cache policy right now. */
  active: number
  /** Requests answered by each outcome since start. */
  outcomes: Record<Outcome, number>
  /** Entries stored (in any tier) since start. */
  stored: number
  /** Background refreshes started (stale-while-revalidate). */
  refreshes: number
  memory: { entries: number, bytes: number }
  /** The shared tier: `off` when the gateway has no Redis. */
  redis: 'ready' | 'unavailable' | 'off'
}

/** `gateway.api('cache')`. */
export interface CacheApi {
  /**
   * Removes entries by tag, by key (an entry id `<path>#<hash>`, or a path for
   * all its entries) or by path prefix, from Redis and from every instance's
   * in-process tier; resolves once every instance acknowledged (at most 2 s).
   * Returns the number of entries deleted from Redis (from this instance's
   * in-process tier when the gateway has no Redis). Rejects with
   * GW_ERR_REDIS_UNAVAILABLE when Redis is down: only this instance was cleared.
   */
  invalidate: (selector: InvalidateSelector) => Promise<number>
  /** Resolves true once the shared tier can be used (at once without Redis), false after `timeoutMs`. @default 5000 */
  ready: (timeoutMs?: number) => Promise<boolean>
  stats: () => CacheStats
}

export class CacheRuntime {
  readonly redis: RedisTier | undefined
  readonly flights = new Map<string, Promise<FlightOutcome>>()
  readonly refreshing = new Set<string>()
  readonly log: PolicyDeps['log']
  /** Bumped by every invalidation: a fill that started before one does not store its answer. */
  generation = 0
  active = 0
  /** Per route label (the methods of one path share it). */
  readonly #counts = new Map<string, OutcomeCounts>()
  #stored = 0
  #refreshes = 0
  readonly #pending = new Set<Promise<unknown>>()
  readonly #tiers = new Set<MemoryTier>()
  readonly #sharedBytes: number
  #shared: MemoryTier | undefined
  #closing: Promise<void> | undefined
  readonly api: CacheApi

  constructor (deps: PolicyDeps) {
    this.log = deps.log
    this.#sharedBytes = sharedMemoryBytes(deps.config.http?.caching)
    const counts = this.#counts
    // eslint-disable-next-line no-new -- registered with the registry, which calls collect() when scraped
    new Counter({
      name: 'switchyard_cache_requests_total',
      help: 'Requests through the response cache, by route and outcome (hit, stale, stale-if-error, miss, collapsed, bypass)',
      labelNames: ['route', 'outcome'],
      registers: [deps.metrics.registry],
      collect () {
        for (const c of counts.values()) {
          for (const outcome of OUTCOMES) {
            const n = c[outcome] - c.reported[outcome]
            if (n > 0) { this.labels(c.route, outcome).inc(n); c.reported[outcome] = c[outcome] }
          }
        }
      }
    })
    // `state: "memory"` keeps every policy's state in the process (Prism).
    const conns = deps.config.state === 'memory' ? undefined : deps.redis()
    if (conns !== undefined) {
      this.redis = new RedisTier(conns, redisSettings(deps.config.redis), new CacheKeys(deps.prefix), deps.log, {
        onInvalidate: (sel) => { this.generation++; this.invalidateLocal(sel) },
        // Invalidations sent while this instance was not subscribed (Redis down, or not yet up) never reach it: drop what it holds.
        onSubscribed: () => {
          this.generation++
          const held = this.stats().memory.entries
          this.clearLocal()
          if (held > 0) deps.log.info({ entries: held }, 'cache: subscribed to invalidations again; in-process tier cleared')
        }
      })
    }
    this.api = {
      invalidate: async (sel) => await this.invalidate(sel),
      ready: async (ms = 5000) => this.redis === undefined ? true : await this.redis.ready(ms),
      stats: () => this.stats()
    }
    deps.provide('cache', this.api)
    deps.onClose(async () => { await this.close() })
  }

  /** The in-process tier for a route: the gateway-wide one, the route's own, or none. */
  memoryFor (scope: MemoryScope): MemoryTier | undefined {
    switch (scope.kind) {
      case 'off': return undefined
      case 'shared':
        if (this.#sharedBytes === 0) return undefined
        if (this.#shared === undefined) { this.#shared = new MemoryTier(this.#sharedBytes); this.#tiers.add(this.#shared) }
        return this.#shared
      case 'own': {
        const t = new MemoryTier(scope.maxBytes)
        this.#tiers.add(t)
        return t
      }
    }
  }

  /** The counters of a route label, made on first use: the route's cache increments them itself. */
  counts (route: string): OutcomeCounts {
    let c = this.#counts.get(route)
    if (c === undefined) { c = new OutcomeCounts(route); this.#counts.set(route, c) }
    return c
  }

  stored (): void { this.#stored++ }
  refreshed (): void { this.#refreshes++ }

  /** Keeps background work (refreshes, lease releases) to settle on close. */
  track (p: Promise<unknown>): void {
    this.#pending.add(p)
    p.then(() => this.#pending.delete(p), () => this.#pending.delete(p))
  }

  invalidateLocal (sel: InvalidateSelector): number {
    let n = 0
    for (const t of this.#tiers) n += t.invalidate(sel)
    return n
  }

  clearLocal (): void {
    for (const t of this.#tiers) t.clear()
  }

  async invalidate (input: InvalidateSelector): Promise<number> {
    if (typeof input !== 'object' || input === null) throw new TypeError('invalidate({ tags?, keys?, prefix? })')
    const sel = cleanSelector(input as Record<string, unknown>)
    if (sel.tags === undefined && sel.keys === undefined && sel.prefix === undefined) return 0
    this.generation++
    const local = this.invalidateLocal(sel)
    const redis = this.redis
    if (redis === undefined) return local
    const down = (cause?: unknown): GatewayError => new GatewayError('GW_ERR_REDIS_UNAVAILABLE', {
      message: 'Redis is not reachable: the cache entries were removed from this instance only; invalidate again once Redis is back',
      cause
    })
    if (!redis.available) throw down()
    try {
      // Redis first: an instance that drops its copy must not refill it from Redis.
      const n = await redis.deleteMatching(sel)
      const { receivers, acked } = await redis.broadcast(sel, INVALIDATE_ACK_MS)
      if (acked < receivers) this.log.warn({ receivers, acked }, 'cache: not every instance acknowledged an invalidation in time')
      this.invalidateLocal(sel)
      return n
    } catch (err) {
      throw down(err)
    }
  }

  #outcomeTotals (): Record<Outcome, number> {
    const t: Record<Outcome, number> = { hit: 0, stale: 0, 'stale-if-error': 0, miss: 0, collapsed: 0, bypass: 0 }
    for (const c of this.#counts.values()) for (const o of OUTCOMES) t[o] += c[o]
    return t
  }

  stats (): CacheStats {
    let entries = 0
    let bytes = 0
    for (const t of this.#tiers) { entries += t.entries; bytes += t.bytes }
    return {
      active: this.active,
      outcomes: this.#outcomeTotals(),
      stored: this.#stored,
      refreshes: this.#refreshes,
      memory: { entries, bytes },
      redis: this.redis === undefined ? 'off' : this.redis.available ? 'ready' : 'unavailable'
    }
  }

  async close (): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#pending])
      await this.redis?.close()
      this.clearLocal()
    })()
    return await this.#closing
  }
}

const runtimes = new WeakMap<PolicyDeps, CacheRuntime>()

/** The runtime of the gateway `deps` belongs to (one per gateway; every route factory gets the same deps). */
export function runtimeFor (deps: PolicyDeps): CacheRuntime {
  let rt = runtimes.get(deps)
  if (rt === undefined) { rt = new CacheRuntime(deps); runtimes.set(deps, rt) }
  return rt
}

/** Drops a response body nobody will read. */
export function discard (body: GatewayResponse['body']): void {
  if (body !== undefined && !Buffer.isBuffer(body)) body.resume()
}
