/**
 * Replies from Redis services arrive on this instance's response channel and
 * are matched on `id` + `service` (PROTOCOL §1.3). Each waiting call has its
 * own timer, so a 500 ms timeout answers 504 at 500 ms, not on a sweep.
 * A reply that is not JSON, has the wrong shape, or matches nothing is logged,
 * counted and dropped — never a crash.
 */
import { GatewayError, type HttpResponse } from '@switchyard/protocol'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics.js'
import type { RedisConnections } from './connections.js'

interface Waiter {
  resolve: (r: HttpResponse) => void
  reject: (e: GatewayError) => void
  timer: NodeJS.Timeout
  service: string
}

export class ReplyRouter {
  readonly channel: string
  readonly #waiting = new Map<string, Waiter>()
  readonly #log: Logger
  readonly #metrics: Metrics

  constructor (conns: RedisConnections, channel: string, log: Logger, metrics: Metrics) {
    this.channel = channel
    this.#log = log
    this.#metrics = metrics
    conns.subscriber.on('message', (ch: string, message: string) => { if (ch === channel) this.#onMessage(message) })
    // Replies cannot arrive while the subscription is down: fail those calls now instead of at their timeout.
    conns.subscriber.on('close', () => this.#failAll())
    conns.subscriber.subscribe(channel).catch((err: unknown) => log.warn({ err, channel }, 'subscribe failed; ioredis retries on reconnect'))
  }

  /** A key not already waiting, derived from the request id. */
  uniqueId (requestId: string, service: string): string {
    let id = requestId
    for (let n = 1; this.#waiting.has(`${id}\0${service}`); n++) id = `${requestId}.${n}`
    return id
  }

  /** Registers a wait for (`id`, `service`); MUST be called before publishing. */
  wait (id: string, service: string, timeoutMs: number): Promise<HttpResponse> {
    const key = `${id}\0${service}`
    return new Promise<HttpResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key)
        reject(new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', { service }))
      }, timeoutMs)
      this.#waiting.set(key, { resolve, reject, timer, service })
    })
  }

  /** Stops waiting (e.g. the publish reached nobody). */
  cancel (id: string, service: string, err: GatewayError): void {
    const key = `${id}\0${service}`
    const w = this.#waiting.get(key)
    if (w === undefined) return
    this.#waiting.delete(key)
    clearTimeout(w.timer)
    w.reject(err)
  }

  #onMessage (message: string): void {
    let reply: unknown
    try {
      reply = JSON.parse(message)
    } catch {
      this.#metrics.redisReply('malformed')
      this.#log.warn({ channel: this.channel, bytes: message.length }, 'dropped a reply that is not JSON')
      return
    }
    const r = reply as { id?: unknown, service?: unknown, response?: unknown }
    if (typeof reply !== 'object' || reply === null || typeof r.id !== 'string' || typeof r.service !== 'string' ||
      (r.response !== undefined && (typeof r.response !== 'object' || r.response === null || Array.isArray(r.response)))) {
      this.#metrics.redisReply('malformed')
      this.#log.warn({ channel: this.channel }, 'dropped a reply without string id/service and an object response')
      return
    }
    const key = `${r.id}\0${r.service}`
    const w = this.#waiting.get(key)
    if (w === undefined) {
      this.#metrics.redisReply('unmatched')
      this.#log.debug({ id: r.id, service: r.service }, 'dropped a reply that matches no waiting request (late or unknown)')
      return
    }
    this.#waiting.delete(key)
    clearTimeout(w.timer)
    this.#metrics.redisReply('matched')
    w.resolve((r.response ?? {}) as HttpResponse)
  }

  #failAll (): void {
    if (this.#waiting.size === 0) return
    this.#log.warn({ waiting: this.#waiting.size }, 'redis subscription lost; failing waiting requests')
    for (const [key, w] of this.#waiting) {
      this.#waiting.delete(key)
      clearTimeout(w.timer)
      w.reject(new GatewayError('GW_ERR_REDIS_UNAVAILABLE', { service: w.service }))
    }
  }

  get size (): number { return this.#waiting.size }

  close (): void {
    for (const [key, w] of this.#waiting) {
      this.#waiting.delete(key)
      clearTimeout(w.timer)
      w.reject(new GatewayError('GW_ERR_SHUTTING_DOWN', { service: w.service }))
    }
  }
}
