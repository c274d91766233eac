/**
 * The two types of the pipeline (STYLE §2): a `GatewayRequest` goes in, a
 * `GatewayResponse` comes out. Transports are the terminal calls to services.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import type { HttpCookie } from '@switchyard/protocol'
import type { Logger } from 'pino'

export type RequestBody =
  | { kind: 'none' }
  | { kind: 'buffer', bytes: Buffer }
  | { kind: 'stream', stream: Readable, length: number | undefined }

/** The client's request, read once at the front door; never mutated after. */
export interface GatewayRequest {
  /** The request id: the client's valid `x-request-id`, or a new UUID. */
  readonly id: string
  /** The traceparent sent to services: the client's trace id (or a new one) with the gateway's span id. */
  readonly traceparent: string
  readonly method: string
  /** The route pattern that matched, e.g. `/users/:id`. */
  readonly route: string
  /** The path as the client sent it, without the query string. */
  readonly path: string
  /** The query string as the client sent it, without `?` ('' when none). */
  readonly rawQuery: string
  readonly params: Readonly<Record<string, string>>
  readonly headers: IncomingHttpHeaders
  /** The client's address: the socket peer, or from X-Forwarded-For when the peer is a trusted proxy. */
  readonly remoteAddress: string
  readonly remotePort: number
  /** Value for the upstream `X-Forwarded-For`. */
  readonly forwardedFor: string
  readonly forwardedProto: string
  readonly forwardedHost: string | undefined
  body: RequestBody
  /** Verified JWT claims, set by the auth policy; forwarded to services (PRODUCT §4.1). */
  claims?: Record<string, unknown> | undefined
  /**
   * Headers a policy adds to whatever answer goes out for this request (the
   * rate limit's `RateLimit-*`), set before the call and written with the head
   * by the front door, on the fast path too. `addResponseHeaders` sets them.
   */
  responseHeaders?: Record<string, string> | undefined
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal
  readonly log: Logger
}

/** A response ready for the client. */
export interface GatewayResponse {
  status: number
  headers: Record<string, string | string[]>
  /** Raw bytes, a stream, or nothing. */
  body: Buffer | Readable | undefined
  /** The answer is already on its way to the client (the passthrough fast path): nothing is left to write. */
  readonly sent?: true
}

export type { HttpCookie }
