/**
 * Pub/sub services (`type: "redis"`, PROTOCOL §1, Prism-compatible): SUBSCRIBE to
 * the request channel; for each request run the handler and PUBLISH
 * `{ id, service, response }` on the message's `responseChannel`.
 *
 * Several gateway services may share one channel and one message (PROTOCOL §1.1);
 * each replica replies once with its own `service` name. Pub/sub delivers to
 * every subscriber, so every replica of a pub/sub service answers every request
 * (as in Prism): run one replica per channel, or use streams to scale out.
 */
import type { Redis } from 'ioredis'
import { closeConnection, connect } from '../connections.js'
import { errField } from '../logger.js'
import { parseMessage } from '../message.js'
import { withTimeout } from '../time.js'
import type { RequestMessage, RollbackMessage } from '@switchyard/protocol'
import type { Consumer, ConsumerContext } from './types.js'

export class PubSubConsumer implements Consumer {
  readonly channel: string
  readonly #ctx: ConsumerContext
  readonly #sub: Redis
  #closing = false

  constructor (ctx: ConsumerContext, channel: string) {
    this.#ctx = ctx
    this.channel = channel
    this.#sub = connect(ctx.opts.redis, 'subscriber', ctx.opts.service, ctx.opts.logger)
    this.#sub.on('message', this.#onMessage)
  }

  async start (): Promise<void> {
    // ioredis subscribes again by itself after a reconnect (autoResubscribe).
    await this.#sub.subscribe(this.channel)
  }

  readonly #onMessage = (channel: string, raw: string): void => {
    if (channel !== this.channel || this.#closing) return
    const { opts, emit, executor } = this.#ctx
    const parsed = parseMessage(raw)
    if (!parsed.ok) {
      opts.logger.warn({ channel, reason: parsed.reason, requestId: parsed.id, bytes: raw.length }, 'ignored a malformed message on the request channel')
      emit('message.rejected', { reason: parsed.reason })
      return
    }
    executor.tracker.track(this.#process(parsed.message)).catch((err: unknown) => {
      opts.logger.error({ requestId: parsed.message.id, err: errField(err) }, 'could not process a message')
    })
  }

  async #process (message: RequestMessage | RollbackMessage): Promise<void> {
    const { opts, emit, executor, command } = this.#ctx
    // Beyond `concurrency`, messages wait here in arrival order (pub/sub cannot push back).
    await executor.slots.acquire()
    try {
      if (executor.abandoned) return
      if (message.type === 'rollback') {
        (await executor.runRollback(message, {})).report()
        return
      }
      if (message.deadline !== undefined && Date.now() > message.deadline) {
        opts.logger.info({ requestId: message.id, deadline: message.deadline }, 'skipped a request past its deadline')
        emit('request.skipped', { id: message.id, reason: 'deadline' })
        return
      }
      const outcome = await executor.runRequest(message, {})
      if (executor.abandoned) return
      await command.publish(message.responseChannel, outcome.reply)
      outcome.report()
    } finally {
      executor.slots.release()
    }
  }

  async stopIntake (): Promise<void> {
    this.#closing = true
    if (this.#sub.status !== 'ready') return
    await withTimeout(this.#sub.unsubscribe(this.channel), 1000).catch(() => {})
  }

  async finish (): Promise<void> {}

  async close (): Promise<void> {
    await closeConnection(this.#sub)
  }
}
