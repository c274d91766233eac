/**
 * Redis Streams services (`type: "redis-stream"`, PROTOCOL §2): the request is
 * appended with `XADD … MAXLEN ~ n`, read by one replica of the service's
 * consumer group, and answered on this instance's response channel. The
 * stream keeps the request while no replica is alive, so a replica that
 * crashes hands it to another; the gateway only waits until the deadline.
 */
import { STREAM_FIELD, streamKey, type HttpRequest, type RollbackMessage } from '@switchyard/protocol'
import type { RedisStreamServiceConfig } from '../config/schema.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import type { GatewayRequest } from '../pipeline/types.js'
import { rollbackRequest, sendAndWait, wireRequest, type RedisContext } from './redis-common.js'
import type { ServiceCall, ServiceTransport } from './types.js'

/** @default 10000 entries, trimmed approximately */
export const DEFAULT_STREAM_MAXLEN = 10_000

export class RedisStreamsTransport implements ServiceTransport {
  readonly name: string
  readonly config: RedisStreamServiceConfig
  readonly stream: string
  readonly #ctx: RedisContext
  readonly #maxLen: number

  constructor (name: string, config: RedisStreamServiceConfig, ctx: RedisContext) {
    this.name = name
    this.config = config
    this.#ctx = ctx
    this.stream = config.stream ?? streamKey(ctx.prefix, name)
    this.#maxLen = config.maxLen ?? DEFAULT_STREAM_MAXLEN
  }

  hookView (view: HttpRequest): HttpRequest { return view }

  async invoke (call: ServiceCall): Promise<ServiceResponse> {
    const redis = this.#ctx.conns.command
    return await sendAndWait(this.#ctx, call, this.name, { awaiting: this.config.awaitResponse !== false, key: `stream:${this.stream}`, markNewId: true },
      async (json) => await redis.xadd(this.stream, 'MAXLEN', '~', String(this.#maxLen), '*', STREAM_FIELD, json))
  }

  /**
   * Creates the consumer group from the start of the stream, so requests sent
   * before the first replica ever started are not skipped by a group created at `$`.
   */
  async ensureGroup (): Promise<void> {
    try {
      await this.#ctx.conns.command.xgroup('CREATE', this.stream, this.config.group ?? this.name, '0', 'MKSTREAM')
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err
    }
  }

  async rollback (greq: GatewayRequest, view: HttpRequest, sent: Set<string>): Promise<void> {
    if (sent.has(`stream:${this.stream}`)) return
    sent.add(`stream:${this.stream}`)
    const request = await rollbackRequest(this.config.onRollbackRequest, view)
    if (request === undefined) return
    const message: RollbackMessage = { type: 'rollback', id: greq.id, request: wireRequest(request) }
    await this.#ctx.conns.command.xadd(this.stream, 'MAXLEN', '~', String(this.#maxLen), '*', STREAM_FIELD, JSON.stringify(message))
  }
}
