/**
 * `@switchyard/service`: answer Switchyard gateway requests over Redis.
 * docs/protocol.md is the wire contract this SDK implements.
 */
export { serve } from './serve.js'
export { bodyBytes, bodyText, bodyJson, binaryResponse } from './body.js'
export { errorResponse } from './runner.js'
export type {
  Logger,
  RedisConnectionOptions,
  RequestContext,
  RequestEventInfo,
  RequestHandler,
  RollbackHandler,
  ServeOptions,
  Service,
  ServiceEvents,
  ServiceTransport
} from './types.js'
export { GatewayError, isGatewayError, DEFAULT_PREFIX, HEARTBEAT_INTERVAL_MS } from '@switchyard/protocol'
export type {
  ErrorCode,
  HttpCookie,
  HttpRequest,
  HttpResponse,
  QueryValue,
  ReplyMessage,
  RequestMessage,
  RollbackMessage,
  ServiceMessage
} from '@switchyard/protocol'
