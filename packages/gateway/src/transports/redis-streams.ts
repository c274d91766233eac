/**
 * Redis Streams services (`type: "redis-stream"`, PROTOCOL §2): the request is
 * appended with `XADD … MAXLEN ~ n`, read by one replica of the service's
 * consumer group, and answered on this instance's response channel. The
 * stream keeps the request while no replica is alive, so a replica that
 * crashes hands it to another; the gateway only waits until the deadline.
 */
import { STREAM_FIELD, streamKey, type HttpRequest, type RequestMessage, type RollbackMessage } from '@switchyard/protocol'
import type { RedisStreamServiceConfig } from '../config/schema.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import { toServiceResponse } from '../pipeline/response-shape.js'
import type { GatewayRequest } from '../pipeline/types.js'
import { checkReachable, redisError, wireRequest, type RedisContext } from './redis-common.js'
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
    const ctx = this.#ctx
    checkReachable(ctx, this.name)
    const { greq } = call
    const key = `stream:${this.stream}`
    let shared = call.stageState.get(key) as { id: string, added: Promise<unknown> } | undefined
    const id = shared?.id ?? ctx.replies.uniqueId(greq.id, this.name)
    const awaiting = this.config.awaitResponse !== false
    const reply = awaiting ? ctx.replies.wait(id, this.name, call.timeoutMs) : undefined
    if (shared === undefined) {
      const message: RequestMessage = {
        type: 'request',
        id,
        request: wireRequest(call.view!),
        responseChannel: ctx.replies.channel,
        deadline: Date.now() + call.timeoutMs,
        traceparent: greq.traceparent,
        ...(greq.claims !== undefined ? { auth: greq.claims } : {})
      }
      shared = { id, added: ctx.conns.command.xadd(this.stream, 'MAXLEN', '~', String(this.#maxLen), '*', STREAM_FIELD, JSON.stringify(message)) }
      call.stageState.set(key, shared)
    }
    try {
      await shared.added
    } catch (err) {
      const e = redisError(err, this.name)
      ctx.replies.cancel(id, this.name, e)
      if (reply !== undefined) await reply.catch(() => {})
      throw e
    }
    if (reply === undefined) return { status: 202, headers: {}, body: undefined, raw: false }
    return toServiceResponse(await reply)
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
    let request = view
    const hook = this.config.onRollbackRequest
    if (hook !== undefined) {
      const r = await hook(view)
      if (r?.handled === true) return
      if (r?.request !== undefined) request = r.request
    }
    const message: RollbackMessage = { type: 'rollback', id: greq.id, request: wireRequest(request) }
    await this.#ctx.conns.command.xadd(this.stream, 'MAXLEN', '~', String(this.#maxLen), '*', STREAM_FIELD, JSON.stringify(message))
  }
}
