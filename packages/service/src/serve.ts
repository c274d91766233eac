/**
 * `serve()`: one replica of a service that answers gateway requests over Redis,
 * by pub/sub (PROTOCOL §1) or Redis Streams (PROTOCOL §2), announcing itself
 * for liveness (PROTOCOL §3).
 */
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import { closeConnection, connect } from './connections.js'
import { PubSubConsumer } from './consumers/pubsub.js'
import { StreamsConsumer } from './consumers/streams.js'
import type { Consumer } from './consumers/types.js'
import { Heartbeat } from './heartbeat.js'
import { errField } from './logger.js'
import { resolveOptions, type ResolvedOptions } from './options.js'
import { Executor, type Emit } from './runner.js'
import type { ServeOptions, Service, ServiceEvents, ServiceTransport } from './types.js'

class ServiceReplica extends EventEmitter<ServiceEvents> implements Service {
  readonly replicaId: string
  readonly service: string
  readonly transport: ServiceTransport
  readonly channel: string | undefined
  readonly stream: string | undefined
  readonly group: string | undefined
  readonly consumer: string | undefined
  readonly #opts: ResolvedOptions
  readonly #command: Redis
  readonly #executor: Executor
  readonly #consumer: Consumer
  readonly #heartbeat: Heartbeat
  #closing: Promise<void> | undefined

  constructor (opts: ResolvedOptions) {
    super()
    this.#opts = opts
    this.replicaId = opts.replicaId
    this.service = opts.service
    this.transport = opts.transport.kind
    this.#command = connect(opts.redis, 'command', opts.service, opts.logger)
    this.#executor = new Executor(opts, this.#emitSafely)
    const ctx = { opts, command: this.#command, executor: this.#executor, emit: this.#emitSafely }
    const t = opts.transport
    if (t.kind === 'redis') {
      this.channel = t.channel
      this.#consumer = new PubSubConsumer(ctx, t.channel)
    } else {
      this.stream = t.stream
      this.group = t.group
      this.consumer = t.consumer
      this.#consumer = new StreamsConsumer(ctx, t)
    }
    this.#heartbeat = new Heartbeat(this.#command, {
      prefix: opts.prefix,
      intervalMs: opts.heartbeatIntervalMs,
      logger: opts.logger,
      announcement: t.kind === 'redis'
        ? { service: opts.service, replicaId: opts.replicaId, transport: 'redis', channel: t.channel }
        : { service: opts.service, replicaId: opts.replicaId, transport: 'redis-stream', stream: t.stream, group: t.group }
    })
  }

  get inFlight (): number { return this.#executor.slots.active }

  /** A throwing event listener must not break the work (an unacked entry, a lost reply). */
  readonly #emitSafely: Emit = (event, ...args) => {
    try {
      (this.emit as (name: string, ...rest: unknown[]) => boolean)(event, ...args)
    } catch (err) {
      this.#opts.logger.error({ event, err: errField(err) }, 'an event listener threw')
    }
  }

  async start (): Promise<void> {
    await this.#consumer.start()
    await this.#heartbeat.start()
    const o = this.#opts
    o.logger.info({ service: o.service, replicaId: o.replicaId, transport: this.transport, channel: this.channel, stream: this.stream, group: this.group }, 'service ready')
  }

  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    const o = this.#opts
    try {
      await this.#consumer.stopIntake()
      const drained = await this.#executor.tracker.drain(o.closeTimeoutMs)
      if (!drained) {
        o.logger.warn({ service: o.service, inFlight: this.#executor.tracker.size, closeTimeoutMs: o.closeTimeoutMs },
          'close: handlers still running after closeTimeoutMs; aborting them (stream entries stay pending for another replica)')
        this.#executor.abandon()
      }
      await this.#consumer.finish(drained)
      await this.#heartbeat.stop()
    } finally {
      await Promise.all([this.#consumer.close(), closeConnection(this.#command)])
      o.logger.info({ service: o.service, replicaId: o.replicaId }, 'service closed')
      this.#emitSafely('closed')
    }
  }
}

/**
 * Starts one replica of a service: it receives the gateway's requests for `service`
 * on `channel` (pub/sub) or `stream` (Redis Streams), runs `handler` with at most
 * `concurrency` at a time, replies, and announces itself every `heartbeatIntervalMs`.
 * Resolves once it receives requests (it waits for Redis if Redis is not up yet).
 *
 * @example
 * const svc = await serve({
 *   service: 'orders',
 *   stream: true,
 *   handler: async (req, ctx) => ({ status: 201, body: { id: ctx.id, path: req.path } })
 * })
 * process.once('SIGTERM', () => { svc.close().catch(console.error) })
 */
export async function serve (options: ServeOptions): Promise<Service> {
  const replica = new ServiceReplica(resolveOptions(options))
  try {
    await replica.start()
  } catch (err) {
    await replica.close().catch(() => {})
    throw err
  }
  return replica
}
