/**
 * Which Redis services have live replicas (PROTOCOL §3). Polled once per
 * heartbeat interval for every Redis service of the config, in one pipeline,
 * so a request only reads memory. A service that never announced itself
 * (Prism-era) is "unknown", never "dead".
 */
import { replicaKey, replicaSetKey, HEARTBEAT_INTERVAL_MS } from '@switchyard/protocol'
import type { Logger } from 'pino'
import type { RedisConnections } from './connections.js'

export interface ReplicaInfo {
  replicaId: string
  service: string
  [field: string]: unknown
}

export type ServiceLiveness =
  | { state: 'unknown' }
  | { state: 'live', replicas: ReplicaInfo[] }
  | { state: 'dead' }

export class Liveness {
  readonly #services: readonly string[]
  readonly #prefix: string
  readonly #conns: RedisConnections
  readonly #log: Logger
  readonly #state = new Map<string, ServiceLiveness>()
  readonly #timer: NodeJS.Timeout
  #running: Promise<void> | undefined

  constructor (services: Iterable<string>, prefix: string, conns: RedisConnections, log: Logger, intervalMs = HEARTBEAT_INTERVAL_MS / 2) {
    this.#services = [...new Set(services)]
    this.#prefix = prefix
    this.#conns = conns
    this.#log = log
    this.#timer = setInterval(() => { this.refresh().catch(() => {}) }, intervalMs)
    this.#timer.unref()
    conns.command.on('ready', () => { this.refresh().catch(() => {}) })
  }

  /** What is known now; `unknown` before the first poll and for Prism-era services. */
  of (service: string): ServiceLiveness {
    return this.#state.get(service) ?? { state: 'unknown' }
  }

  /** Live replicas of every Redis service of the config. */
  all (): Record<string, ServiceLiveness> {
    return Object.fromEntries(this.#services.map(s => [s, this.of(s)]))
  }

  /** Polls Redis now (coalesced with a poll already running). */
  async refresh (): Promise<void> {
    this.#running ??= this.#poll().finally(() => { this.#running = undefined })
    return await this.#running
  }

  async #poll (): Promise<void> {
    if (this.#conns.command.status !== 'ready' || this.#services.length === 0) return
    try {
      const redis = this.#conns.command
      const members = await Promise.all(this.#services.map(async s => await redis.smembers(replicaSetKey(this.#prefix, s))))
      await Promise.all(this.#services.map(async (s, i) => {
        const ids = members[i]!
        if (ids.length === 0) { this.#state.set(s, { state: 'unknown' }); return }
        const values = await redis.mget(ids.map(id => replicaKey(this.#prefix, s, id)))
        const replicas: ReplicaInfo[] = []
        values.forEach((v, j) => {
          if (v === null) return
          try {
            replicas.push({ ...(JSON.parse(v) as object), replicaId: ids[j]!, service: s })
          } catch {
            replicas.push({ replicaId: ids[j]!, service: s })
          }
        })
        this.#state.set(s, replicas.length > 0 ? { state: 'live', replicas } : { state: 'dead' })
      }))
    } catch (err) {
      this.#log.debug({ err }, 'liveness poll failed')
    }
  }

  close (): void { clearInterval(this.#timer) }
}
