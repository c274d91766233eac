/**
 * Redis connections (ioredis): one for commands, one for SUBSCRIBE (STYLE §3).
 * Created only when the config has a Redis-backed feature. They reconnect by
 * themselves; while Redis is down, Redis routes answer 503 at once (the
 * command connection has no offline queue) and HTTP routes are untouched.
 */
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config/types.js'

export interface RedisSettings { url: string | undefined, options: RedisOptions }

/** `redis.url`, else host/port/`redis.options` (Prism), else REDIS_URL, else 127.0.0.1:6379. */
export function redisSettings (config: GatewayConfig['redis']): RedisSettings {
  const c = config ?? {}
  const prism = (c.options ?? {}) as Record<string, unknown>
  const url = c.url ?? (typeof prism.url === 'string' ? prism.url : undefined) ?? (c.host === undefined && prism.host === undefined ? process.env.REDIS_URL : undefined)
  const options: RedisOptions = { ...(prism as RedisOptions) }
  delete (options as Record<string, unknown>).url
  if (c.host !== undefined) options.host = c.host
  if (c.port !== undefined) options.port = c.port
  if (c.password !== undefined) options.password = c.password
  if (c.db !== undefined) options.db = c.db
  return { url, options }
}

function retryStrategy (times: number): number {
  return Math.min(50 * times, 1000)
}

export class RedisConnections {
  readonly command: Redis
  readonly subscriber: Redis
  readonly #log: Logger
  #lastErrorLog = 0
  #closing: Promise<void> | undefined

  constructor (settings: RedisSettings, log: Logger) {
    this.#log = log
    const base: RedisOptions = { ...settings.options, retryStrategy, maxRetriesPerRequest: 1, connectionName: 'switchyard-gateway' }
    const make = (extra: RedisOptions): Redis => settings.url === undefined ? new Redis({ ...base, ...extra }) : new Redis(settings.url, { ...base, ...extra })
    this.command = make({ enableOfflineQueue: false, enableAutoPipelining: true })
    this.subscriber = make({ enableOfflineQueue: true })
    for (const [name, c] of [['command', this.command], ['subscriber', this.subscriber]] as const) {
      c.on('error', (err: Error) => this.#logError(name, err))
      c.on('ready', () => log.info({ connection: name }, 'redis ready'))
    }
  }

  /** Both connections can be used now. */
  get ready (): boolean {
    return this.command.status === 'ready' && this.subscriber.status === 'ready'
  }

  /**
   * Resolves when both connections are ready, or after `ms` (Redis down at start
   * must not stop HTTP routes from serving). Never rejects.
   */
  async waitReady (ms: number): Promise<boolean> {
    if (this.ready) return true
    return await new Promise<boolean>(resolve => {
      const check = (): void => { if (this.ready) done(true) }
      const timer = setTimeout(() => done(false), ms)
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.command.off('ready', check)
        this.subscriber.off('ready', check)
        resolve(ok)
      }
      this.command.on('ready', check)
      this.subscriber.on('ready', check)
    })
  }

  #logError (connection: string, err: Error): void {
    // Reconnect attempts fail many times a second while Redis is down: log once every 5 s.
    const now = Date.now()
    if (now - this.#lastErrorLog < 5000) return
    this.#lastErrorLog = now
    this.#log.warn({ connection, err: err.message }, 'redis connection error; reconnecting')
  }

  async close (): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([this.command.quit(), this.subscriber.quit()])
      this.command.disconnect()
      this.subscriber.disconnect()
    })()
    return await this.#closing
  }
}
