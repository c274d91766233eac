/**
 * What the rate limiter shares across the routes of one gateway: the stores
 * (Redis, memory, the local fallback), the global limits, shared buckets, a
 * metric, and the `gateway.api('rateLimits')` API.
 */
import { randomUUID } from 'node:crypto'
import { Counter } from 'prom-client'
import type { Redis } from 'ioredis'
import { configInvalid, type ConfigIssue } from '../../config/validate.js'
import type { PolicyDeps } from '../types.js'
import { MemoryStore } from './memory-store.js'
import { parseRateLimiting, type LimitSpec } from './options.js'
import { RedisStore } from './redis-store.js'

/**
 * How long a decision may wait for Redis before `onRedisDown` applies, in
 * milliseconds. Also the longest the first requests wait for the first
 * connection at start.
 */
export const REDIS_DECISION_TIMEOUT_MS = 1000

/** How often the memory stores drop expired keys, in milliseconds. */
const SWEEP_MS = 30_000

/** Logged at most this often while Redis is down, in milliseconds. */
const WARN_EVERY_MS = 5000

const OUTCOMES = ['allowed', 'limited', 'redis_down_open', 'redis_down_closed', 'local_allowed', 'local_limited'] as const
export type DecisionOutcome = typeof OUTCOMES[number]

/** One route's decisions by outcome; `reported` is what the counter has been given. */
export class DecisionCounts {
  readonly route: string
  allowed = 0
  limited = 0
  redis_down_open = 0
  redis_down_closed = 0
  local_allowed = 0
  local_limited = 0
  readonly reported: Record<DecisionOutcome, number> = { allowed: 0, limited: 0, redis_down_open: 0, redis_down_closed: 0, local_allowed: 0, local_limited: 0 }
  constructor (route: string) { this.route = route }
}

/** `gateway.api('rateLimits')`. */
export interface RateLimitsApi {
  /** Where decisions are made: `redis` (with a fallback while it is down) or `memory`. */
  readonly store: 'redis' | 'memory'
  /** Whether decisions are going to Redis now (always false for `memory`). */
  redisReady: () => boolean
  /** Resolves true once the Redis command connection is ready (false after `timeoutMs`, or for `memory`). */
  waitRedis: (timeoutMs?: number) => Promise<boolean>
  /** Forgets every counter of the in-process stores (memory store and local fallback). */
  resetLocal: () => void
}

export interface RateLimitRegistry {
  readonly deps: PolicyDeps
  /** The Redis store, or undefined when the config has memory state. */
  readonly redis: RedisStore | undefined
  readonly redisClient: Redis | undefined
  /** The store when there is no Redis. */
  readonly memory: MemoryStore
  /** The `onRedisDown: "local"` fallback. */
  readonly local: MemoryStore
  /**
   * Before the command connection was ever ready (at start): resolves when it is, or after
   * REDIS_DECISION_TIMEOUT_MS — once for all requests, so a Redis that is down at start delays
   * only the first requests, once.
   */
  firstReady: () => Promise<void>
  /** The connection was ready once, or the start-up wait is over. */
  everReady: () => boolean
  /** The decision counts of one route, by outcome: plain numbers, read when the metrics are scraped. */
  counter: (route: string) => DecisionCounts
  redisDown: (err: unknown) => void
  /** A bucket name shared by several routes must mean the same limit everywhere. */
  claimBucket: (spec: LimitSpec, issues: ConfigIssue[]) => void
}

const registries = new WeakMap<PolicyDeps, RateLimitRegistry>()
const globals = new WeakMap<PolicyDeps, LimitSpec[]>()

/** `http.rateLimiting`, validated once per gateway (also when every route overrides it). */
export function globalLimits (deps: PolicyDeps): LimitSpec[] {
  let g = globals.get(deps)
  if (g === undefined) {
    const issues: ConfigIssue[] = []
    g = parseRateLimiting((deps.config.http as Record<string, unknown> | undefined)?.rateLimiting, ['http', 'rateLimiting'], issues)
    throwIssues(issues)
    globals.set(deps, g)
  }
  return g
}

/** Throws one GW_ERR_CONFIG_INVALID listing every issue (the format of config/validate.ts). */
export function throwIssues (issues: readonly ConfigIssue[]): void {
  if (issues.length === 0) return
  throw configInvalid(issues)
}

export function rateLimitRegistry (deps: PolicyDeps): RateLimitRegistry {
  let reg = registries.get(deps)
  if (reg !== undefined) return reg
  // `state: "memory"` is a choice even when Redis is configured for other things.
  const conns = deps.config.state === 'memory' ? undefined : deps.redis()
  const client = conns?.command
  // Sliding-window members are unique across instances, even with one configured instanceId.
  const redis = client === undefined ? undefined : new RedisStore(client, { timeoutMs: REDIS_DECISION_TIMEOUT_MS, memberPrefix: `${deps.instanceId}.${randomUUID().slice(0, 8)}` })
  let everReady = client?.status === 'ready'
  let startup: Promise<void> | undefined
  const onReady = (): void => { everReady = true }
  client?.on('ready', onReady)

  const memory = new MemoryStore()
  const local = new MemoryStore()
  const sweep = setInterval(() => { memory.sweep(); local.sweep() }, SWEEP_MS)
  sweep.unref()

  // Counted as plain numbers per route (prom-client's labelled inc() hashes its labels on every
  // call) and added to the counter when it is scraped, as metrics.ts does for requests.
  const counts: DecisionCounts[] = []
  // eslint-disable-next-line no-new -- registered with the registry, which calls collect() when scraped
  new Counter({
    name: 'switchyard_rate_limit_decisions_total',
    help: 'Rate-limit decisions by route and outcome (allowed, limited, redis_down_open, redis_down_closed, local_allowed, local_limited)',
    labelNames: ['route', 'outcome'],
    registers: [deps.metrics.registry],
    collect () {
      for (const c of counts) {
        for (const outcome of OUTCOMES) {
          const n = c[outcome] - c.reported[outcome]
          if (n > 0) { this.labels(c.route, outcome).inc(n); c.reported[outcome] = c[outcome] }
        }
      }
    }
  })

  let lastWarn = 0
  const buckets = new Map<string, LimitSpec>()

  const waitReady = async (timeoutMs: number): Promise<boolean> => {
    if (client === undefined) return false
    if (client.status === 'ready') return true
    return await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => { client.off('ready', ready); resolve(false) }, timeoutMs)
      const ready = (): void => { clearTimeout(timer); resolve(true) }
      client.once('ready', ready)
    })
  }

  reg = {
    deps,
    redis,
    redisClient: client,
    memory,
    local,
    firstReady: async () => {
      startup ??= waitReady(REDIS_DECISION_TIMEOUT_MS).then(() => { everReady = true })
      await startup
    },
    everReady: () => everReady,
    counter: (route) => {
      const c = new DecisionCounts(route)
      counts.push(c)
      return c
    },
    redisDown: (err) => {
      const now = Date.now()
      if (now - lastWarn < WARN_EVERY_MS) return
      lastWarn = now
      deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'rate limiting: redis unavailable; applying onRedisDown')
    },
    claimBucket: (spec, out) => {
      if (spec.bucket === undefined) return
      const seen = buckets.get(spec.bucket)
      if (seen === undefined) { buckets.set(spec.bucket, spec); return }
      if (seen.limit !== spec.limit || seen.windowMs !== spec.windowMs || seen.algorithm !== spec.algorithm) {
        out.push({ path: `${spec.path}.bucket`, message: `bucket "${spec.bucket}" is also used at ${seen.path} with another limit, window or algorithm` })
      }
    }
  }
  registries.set(deps, reg)

  const api: RateLimitsApi = {
    store: redis === undefined ? 'memory' : 'redis',
    redisReady: () => client?.status === 'ready',
    waitRedis: async (timeoutMs = 10_000) => await waitReady(timeoutMs),
    resetLocal: () => { memory.clear(); local.clear() }
  }
  deps.provide('rateLimits', api)
  deps.onClose(() => {
    clearInterval(sweep)
    client?.off('ready', onReady)
  })
  return reg
}
