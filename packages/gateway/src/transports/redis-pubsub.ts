/**
 * Redis pub/sub services (`type: "redis"`, PROTOCOL §1, Prism-compatible):
 * PUBLISH the request on `requestChannel`, wait for `{ id, service, response }`
 * on this instance's response channel. One message per distinct channel per
 * stage; a PUBLISH that reached no subscriber is a 503 at once.
 */
import { GatewayError, type HttpRequest, type RequestMessage, type RollbackMessage } from '@switchyard/protocol'
import type { RedisServiceConfig } from '../config/schema.js'
import { toServiceResponse } from '../pipeline/response-shape.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import type { GatewayRequest } from '../pipeline/types.js'
import { checkReachable, redisError, wireRequest, type RedisContext } from './redis-common.js'
import type { ServiceCall, ServiceTransport } from './types.js'

export class RedisPubSubTransport implements ServiceTransport {
  readonly name: string
  readonly config: RedisServiceConfig
  readonly #ctx: RedisContext

  constructor (name: string, config: RedisServiceConfig, ctx: RedisContext) {
    this.name = name
    this.config = config
    this.#ctx = ctx
  }

  hookView (view: HttpRequest): HttpRequest { return view }

  #channel (): string {
    const n = this.config.numRequestChannels
    return n === undefined ? this.config.requestChannel : `${this.config.requestChannel}${Math.floor(Math.random() * n)}`
  }

  async invoke (call: ServiceCall): Promise<ServiceResponse> {
    const { greq } = call
    const ctx = this.#ctx
    checkReachable(ctx, this.name)
    const view = call.view!
    const channel = this.#channel()
    const awaiting = this.config.awaitResponse !== false
    // Services of one stage on one channel share one message (Prism); each replies with its own name.
    const key = `pubsub:${channel}`
    let shared = call.stageState.get(key) as { id: string, published: Promise<number> } | undefined
    const id = shared?.id ?? ctx.replies.uniqueId(greq.id, this.name)
    const reply = awaiting ? ctx.replies.wait(id, this.name, call.timeoutMs) : undefined
    if (shared === undefined) {
      const message: RequestMessage = {
        type: 'request',
        id,
        request: wireRequest(view),
        responseChannel: ctx.replies.channel,
        deadline: Date.now() + call.timeoutMs,
        traceparent: greq.traceparent,
        ...(greq.claims !== undefined ? { auth: greq.claims } : {})
      }
      shared = { id, published: ctx.conns.command.publish(channel, JSON.stringify(message)) }
      call.stageState.set(key, shared)
    }
    let receivers: number
    try {
      receivers = await shared.published
    } catch (err) {
      const e = redisError(err, this.name)
      ctx.replies.cancel(id, this.name, e)
      if (reply !== undefined) await reply.catch(() => {})
      throw e
    }
    if (receivers === 0) {
      const e = new GatewayError('GW_ERR_SERVICE_UNAVAILABLE', { service: this.name, message: 'No subscriber is listening on the service\'s request channel' })
      ctx.replies.cancel(id, this.name, e)
      if (reply !== undefined) await reply.catch(() => {})
      throw e
    }
    if (reply === undefined) return { status: 202, headers: {}, body: undefined, raw: false }
    return toServiceResponse(await reply)
  }

  async rollback (greq: GatewayRequest, view: HttpRequest, sent: Set<string>): Promise<void> {
    let request = view
    const hook = this.config.onRollbackRequest
    if (hook !== undefined) {
      const r = await hook(view)
      if (r?.handled === true) return
      if (r?.request !== undefined) request = r.request
    }
    // With numRequestChannels the request went to one of the suffixed channels: tell them all.
    const n = this.config.numRequestChannels
    const channels = n === undefined ? [this.config.requestChannel] : Array.from({ length: n }, (_, i) => `${this.config.requestChannel}${i}`)
    const message: RollbackMessage = { type: 'rollback', id: greq.id, request: wireRequest(request) }
    const json = JSON.stringify(message)
    for (const channel of channels) {
      if (sent.has(`pubsub:${channel}`)) continue
      sent.add(`pubsub:${channel}`)
      await this.#ctx.conns.command.publish(channel, json)
    }
  }
}
