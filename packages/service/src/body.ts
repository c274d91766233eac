/**
 * Request and response bodies (PROTOCOL §1.2): JSON arrives parsed, forms as
 * objects, other text as a string, and anything else as base64 with
 * `bodyEncoding: "base64"` beside it. These helpers give the body in the form a
 * handler wants, whatever form it arrived in.
 */
import type { HttpRequest, HttpResponse } from '@switchyard/protocol'

/**
 * The request body as bytes: base64 bodies decoded, strings as UTF-8, parsed JSON
 * re-serialized. `undefined` when the request has no body.
 * @example
 * const bytes = bodyBytes(request) // Buffer | undefined
 */
export function bodyBytes (request: Pick<HttpRequest, 'body' | 'bodyEncoding'>): Buffer | undefined {
  const { body } = request
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return request.bodyEncoding === 'base64' ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8')
  return Buffer.from(JSON.stringify(body), 'utf8')
}

/** The request body as text (base64 decoded as UTF-8; parsed JSON re-serialized). `undefined` when there is none. */
export function bodyText (request: Pick<HttpRequest, 'body' | 'bodyEncoding'>): string | undefined {
  const { body } = request
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return request.bodyEncoding === 'base64' ? Buffer.from(body, 'base64').toString('utf8') : body
  return JSON.stringify(body)
}

/**
 * The request body as JSON: already-parsed bodies as they are, strings (and base64) parsed.
 * `undefined` when there is none. Throws a `SyntaxError` on a body that is not JSON,
 * which the SDK turns into a 500 reply unless the handler catches it.
 */
export function bodyJson<T = unknown> (request: Pick<HttpRequest, 'body' | 'bodyEncoding'>): T | undefined {
  const { body } = request
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return JSON.parse(bodyText(request)!) as T
  return body as T
}

/**
 * A reply carrying raw bytes: `body` as base64 with `bodyEncoding: "base64"`.
 * (Returning a `Buffer` body from a handler does the same.)
 * @example
 * return binaryResponse(png, { contentType: 'image/png' })
 */
export function binaryResponse (bytes: Uint8Array, init: Omit<HttpResponse, 'body' | 'bodyEncoding'> = {}): HttpResponse {
  return { ...init, body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), bodyEncoding: 'base64' }
}
