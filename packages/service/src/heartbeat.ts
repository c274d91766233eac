/**
 * Liveness (PROTOCOL §3): every interval, `SET <prefix>:replica:<service>:<replicaId>
 * <json> PX 3×interval` and `SADD <prefix>:replicas:<service> <replicaId>`.
 * The gateway reads them to answer 503 at once when a service has no live replica.
 * On close the key is deleted but the set member stays, so the gateway can tell
 * "every replica gone" (dead) from "never announced" (unknown, Prism-era).
 */
import { hostname } from 'node:os'
import { REPLICA_TTL_INTERVALS, replicaKey, replicaSetKey, type ReplicaAnnouncement } from '@switchyard/protocol'
import type { Redis } from 'ioredis'
import { errField } from './logger.js'
import { withTimeout } from './time.js'
import type { Logger } from './types.js'

export interface HeartbeatOptions {
  prefix: string
  intervalMs: number
  announcement: Omit<ReplicaAnnouncement, 'pid' | 'host' | 'startedAt'>
  logger: Logger
}

export class Heartbeat {
  readonly key: string
  readonly setKey: string
  readonly #redis: Redis
  readonly #intervalMs: number
  readonly #value: string
  readonly #replicaId: string
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #beating: Promise<void> | undefined
  #stopped = false
  readonly #onReady = (): void => { this.beat().catch(() => {}) }

  constructor (redis: Redis, options: HeartbeatOptions) {
    const a = options.announcement
    this.#redis = redis
    this.#intervalMs = options.intervalMs
    this.#replicaId = a.replicaId
    this.#log = options.logger
    this.key = replicaKey(options.prefix, a.service, a.replicaId)
    this.setKey = replicaSetKey(options.prefix, a.service)
    const value: ReplicaAnnouncement = { ...a, pid: process.pid, host: hostname(), startedAt: Date.now() }
    this.#value = JSON.stringify(value)
  }

  /** Announces now (resolves once Redis has the key), then every interval and on every reconnect. */
  async start (): Promise<void> {
    await this.beat()
    if (this.#stopped) return
    this.#timer = setInterval(this.#onReady, this.#intervalMs)
    this.#timer.unref()
    // After a Redis restart the key is gone: announce again at once, not an interval later.
    this.#redis.on('ready', this.#onReady)
  }

  /** One announcement; coalesced with one already running (a slow Redis never piles them up). */
  async beat (): Promise<void> {
    if (this.#stopped) return
    this.#beating ??= (async () => {
      try {
        // A pipeline, not MULTI: the two keys may sit in different cluster slots.
        const results = await this.#redis.pipeline()
          .set(this.key, this.#value, 'PX', REPLICA_TTL_INTERVALS * this.#intervalMs)
          .sadd(this.setKey, this.#replicaId)
          .exec()
        const failed = results?.find(([err]) => err !== null)
        if (failed !== undefined) throw failed[0]
      } catch (err) {
        this.#log.warn({ key: this.key, err: errField(err) }, 'heartbeat failed')
      } finally {
        this.#beating = undefined
      }
    })()
    return await this.#beating
  }

  /** Stops announcing and deletes the key (the set member stays). Idempotent. */
  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#timer)
    this.#redis.off('ready', this.#onReady)
    if (this.#redis.status !== 'ready') return // it expires by itself
    // Same connection, so this DEL lands after any SET still in flight.
    try {
      await withTimeout(this.#redis.del(this.key), 1000)
    } catch (err) {
      this.#log.warn({ key: this.key, err: errField(err) }, 'could not delete the replica key; it expires by itself')
    }
  }
}
