/**
 * What the two Redis transports share: the connections, the reply router, the
 * liveness view, and the wire form of the request (PROTOCOL §1.2).
 */
import { GatewayError, type HttpRequest } from '@switchyard/protocol'
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
