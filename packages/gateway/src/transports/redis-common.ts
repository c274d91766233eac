/**
 * What the two Redis transports share: the connections, the reply router, the
 * liveness view, and the wire form of the request (PROTOCOL §1.2).
 */
import { GatewayError, type HttpRequest, type RequestMessage } from '@switchyard/protocol'
import type { OnRollbackRequest } from '../config/schema.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import { toServiceResponse } from '../pipeline/response-shape.js'
import type { ServiceCall } from './types.js'
import type { Logger } from 'pino'
import type { RedisConnections } from '../redis/connections.js'
import type { Liveness } from '../redis/liveness.js'
import type { ReplyRouter } from '../redis/replies.js'

export interface RedisContext {
  conns: RedisConnections
  replies: ReplyRouter
  liveness: Liveness
  prefix: string
  log: Logger
}

/** The request as it crosses Redis: bytes become base64 with `bodyEncoding` beside them. */
export function wireRequest (view: HttpRequest): HttpRequest {
  const body = view.body
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    return { ...view, body: Buffer.from(body).toString('base64'), bodyEncoding: 'base64' }
  }
  return view
}

/** Fails fast when Redis is down, or when the service announced replicas and none is alive. */
export function checkReachable (ctx: RedisContext, service: string): void {
  if (!ctx.conns.ready) throw new GatewayError('GW_ERR_REDIS_UNAVAILABLE', { service })
  if (ctx.liveness.of(service).state === 'dead') throw new GatewayError('GW_ERR_SERVICE_UNAVAILABLE', { service })
}

/** Redis command errors (connection lost mid-call) are 503s, never raw errors. */
export function redisError (err: unknown, service: string): GatewayError {
  if (err instanceof GatewayError) return err
  return new GatewayError('GW_ERR_REDIS_UNAVAILABLE', { service, cause: err })
}

export interface SendOptions {
  /** false: answer 202 once the message is out (`awaitResponse: false`). */
  awaiting: boolean
  /** The channel or stream, as `pubsub:<channel>` / `stream:<stream>`: one message per key per stage. */
  key: string
  /** Streams: say `newId: true` when this gateway minted the request id (docs/protocol.md §3.2). */
  markNewId?: boolean
}

/**
 * The request half both Redis transports share: one message per `key` per
 * stage (services of a stage on one channel or stream share it and each
 * waits for its own reply), the wait registered before sending, and a send
 * failure — or a `rejected` verdict on what the send returned — cancelling
 * the wait. `awaiting: false` returns 202 once the message is out.
 */
export async function sendAndWait<R> (ctx: RedisContext, call: ServiceCall, service: string, { awaiting, key, markNewId = false }: SendOptions,
  send: (json: string) => Promise<R>, rejected?: (sent: R) => GatewayError | undefined): Promise<ServiceResponse> {
  checkReachable(ctx, service)
  const { greq } = call
  let shared = call.stageState.get(key) as { id: string, sent: Promise<R> } | undefined
  const id = shared?.id ?? ctx.replies.uniqueId(greq.id, service)
  const reply = awaiting ? ctx.replies.wait(id, service, call.timeoutMs) : undefined
  if (shared === undefined) {
    const message: RequestMessage = {
      type: 'request',
      id,
      request: wireRequest(call.view!),
      responseChannel: ctx.replies.channel,
      deadline: Date.now() + call.timeoutMs,
      traceparent: greq.traceparent,
      // Undefined fields are left out by JSON.stringify: no object spread per request.
      auth: greq.claims,
      // The client's valid x-request-id becomes greq.id; any other id was made here, for this request.
      newId: markNewId && greq.headers['x-request-id'] !== greq.id ? true : undefined
    }
    shared = { id, sent: send(JSON.stringify(message)) }
    call.stageState.set(key, shared)
  }
  let failure: GatewayError | undefined
  try {
    failure = rejected?.(await shared.sent)
  } catch (err) {
    failure = redisError(err, service)
  }
  if (failure !== undefined) {
    ctx.replies.cancel(id, service, failure)
    if (reply !== undefined) await reply.catch(() => {})
    throw failure
  }
  if (reply === undefined) return { status: 202, headers: {}, body: undefined, raw: false }
  return toServiceResponse(await reply)
}

/** The request a rollback carries after the service's `onRollbackRequest`; undefined when the hook handled it. */
export async function rollbackRequest (hook: OnRollbackRequest | undefined, view: HttpRequest): Promise<HttpRequest | undefined> {
  if (hook === undefined) return view
  const r = await hook(view)
  if (r?.handled === true) return undefined
  return r?.request ?? view
}
