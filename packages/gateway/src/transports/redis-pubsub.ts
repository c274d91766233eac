/**
 * Redis pub/sub services (`type: "redis"`, PROTOCOL §1, Prism-compatible):
 * PUBLISH the request on `requestChannel`, wait for `{ id, service, response }`
 * on this instance's response channel. One message per distinct channel per
 * stage; a PUBLISH that reached no subscriber is a 503 at once.
 */
import { GatewayError, type HttpRequest, type RollbackMessage } from '@switchyard/protocol'
import type { RedisServiceConfig } from '../config/schema.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import type { GatewayRequest } from '../pipeline/types.js'
import { rollbackRequest, sendAndWait, wireRequest, type RedisContext } from './redis-common.js'
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
    const channel = this.#channel()
    const redis = this.#ctx.conns.command
    // Services of one stage on one channel share one message (Prism); each replies with its own name.
    return await sendAndWait(this.#ctx, call, this.name, { awaiting: this.config.awaitResponse !== false, key: `pubsub:${channel}` },
      async (json) => await redis.publish(channel, json),
      (receivers) => receivers === 0
        ? new GatewayError('GW_ERR_SERVICE_UNAVAILABLE', { service: this.name, message: 'No subscriber is listening on the service\'s request channel' })
        : undefined)
  }

  async rollback (greq: GatewayRequest, view: HttpRequest, sent: Set<string>): Promise<void> {
    const request = await rollbackRequest(this.config.onRollbackRequest, view)
    if (request === undefined) return
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
