/**
 * The wire contract between the gateway and services over Redis (PROTOCOL.md §1–§2).
 * Every field a Prism-era service reads keeps its Prism name and meaning; the
 * Switchyard extensions are optional for a receiver to read.
 */

/** Query values: a key repeated in the query string becomes an array. */
export type QueryValue = string | string[]

/** The HTTP request as a service sees it (PROTOCOL §1.2). */
export interface HttpRequest {
  /** Path without the query string, as the client sent it (percent-decoding left to the service). */
  path: string
  method: string
  params: Record<string, string>
  query: Record<string, QueryValue>
  /** Header names are lower-case. */
  headers: Record<string, string | string[] | undefined>
  /**
   * JSON bodies arrive parsed; `application/x-www-form-urlencoded` as an object;
   * other text types as a string; anything else as base64 with `bodyEncoding: "base64"`.
   * Absent when the request has no body.
   */
  body?: unknown
  bodyEncoding?: 'base64'
  remoteAddress?: string
  remotePort?: number
}

export interface HttpCookie {
  name: string
  value: string
  path?: string
  domain?: string
  /** Seconds, as in `Set-Cookie: Max-Age`. */
  maxAge?: number
  expires?: string
  httpOnly?: boolean
  secure?: boolean
  sameSite?: 'strict' | 'lax' | 'none' | 'Strict' | 'Lax' | 'None'
}

/** A service's answer (PROTOCOL §1.3). No `status` → 200, or 204 when there is no body. */
export interface HttpResponse {
  status?: number
  headers?: Record<string, string | string[] | number | undefined>
  body?: unknown
  /** Extension: `"base64"` when `body` is a base64 string of raw bytes. */
  bodyEncoding?: 'base64'
  cookies?: HttpCookie[]
  redirect?: string
  contentType?: string
}

/** PUBLISHed on a service's `requestChannel`, or appended to its stream. */
export interface RequestMessage {
  type: 'request'
  id: string
  request: HttpRequest
  responseChannel: string
  /** Extension: epoch milliseconds after which the gateway no longer waits. Required on streams. */
  deadline?: number
  /** Extension: W3C trace context of the gateway's span. */
  traceparent?: string
  /** Extension: verified JWT claims. */
  auth?: Record<string, unknown>
  /**
   * Extension (streams): the gateway minted `id` for this request (the client
   * sent no valid `x-request-id`), so no reply can be on record under it and a
   * replica may skip the idempotency lookup on the entry's first delivery.
   */
  newId?: true
}

/** PUBLISHed on each distinct `requestChannel` of the services to roll back. No reply. */
export interface RollbackMessage {
  type: 'rollback'
  id: string
  request: HttpRequest
}

/** PUBLISHed by a service on the request's `responseChannel`. */
export interface ReplyMessage {
  id: string
  service: string
  response: HttpResponse
}

/** An error crossing Redis: plain data, rebuilt into a class on arrival. */
export interface WireError {
  code: string
  message: string
  statusCode: number
  retryable?: boolean
  data?: unknown
}

export type ServiceMessage = RequestMessage | RollbackMessage
