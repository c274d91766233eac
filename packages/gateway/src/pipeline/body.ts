/**
 * Bodies: read with a byte limit, parsed only when a hook, transform, merge or
 * Redis service needs them (PROTOCOL §1.2), and serialized back only when
 * something changed them. Otherwise the client's bytes pass through untouched.
 */
import type { Readable } from 'node:stream'
import { GatewayError } from '@switchyard/protocol'

export function mediaType (contentType: string | string[] | undefined): string {
  if (typeof contentType !== 'string') return ''
  const semi = contentType.indexOf(';')
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
}

export function isJsonType (mt: string): boolean {
  return mt === 'application/json' || (mt.startsWith('application/') && mt.endsWith('+json'))
}

export function isTextType (mt: string): boolean {
  return mt.startsWith('text/') || mt === 'application/xml' || mt.endsWith('+xml') || mt === 'application/javascript' || mt === 'application/graphql'
}

export const FORM_TYPE = 'application/x-www-form-urlencoded'

/** Reads a whole stream into one Buffer, failing with 413 past `limit` bytes. */
export async function readBody (stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  // Not destroyed past the limit: destroying a request destroys its socket, and the
  // client would get a reset instead of the 413 (which closes the connection itself).
  for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      stream.resume() // discard the rest
      throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: limit } })
    }
    chunks.push(chunk)
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
}

/** Reads a streamed request body into memory once (a policy or the merge needs it), with the route's limit. */
export async function ensureBuffered (greq: { body: import('./types.js').RequestBody }, limit: number): Promise<void> {
  const b = greq.body
  if (b.kind !== 'stream') return
  if (b.length !== undefined && b.length > limit) throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: limit } })
  greq.body = { kind: 'buffer', bytes: await readBody(b.stream, limit) }
}

/** A query string as an object; repeated keys become arrays (PROTOCOL §1.2). */
export function parseQuery (raw: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  if (raw === '') return out
  for (const [k, v] of new URLSearchParams(raw)) {
    const prev = out[k]
    if (prev === undefined) out[k] = v
    else if (Array.isArray(prev)) prev.push(v)
    else out[k] = [prev, v]
  }
  return out
}

export function serializeQuery (query: Record<string, unknown>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue
    if (Array.isArray(v)) for (const x of v) p.append(k, String(x))
    else p.append(k, String(v))
  }
  return p.toString()
}

export interface ParsedBody { body: unknown, encoding?: 'base64' }

/**
 * Parses request bytes for services and hooks: JSON → value, form → object,
 * text → string, anything else → the bytes (sent as base64 over Redis).
 * Malformed JSON is the client's error (400), never a crash.
 */
export function parseRequestBody (bytes: Buffer, contentType: string | string[] | undefined): unknown {
  if (bytes.length === 0) return undefined
  const mt = mediaType(contentType)
  if (isJsonType(mt)) {
    try {
      return JSON.parse(bytes.toString('utf8'))
    } catch {
      throw new GatewayError('GW_ERR_BODY_MALFORMED', { message: 'The request body is not valid JSON' })
    }
  }
  if (mt === FORM_TYPE) return parseQuery(bytes.toString('utf8'))
  if (isTextType(mt) || mt === '') return mt === '' && !isUtf8Text(bytes) ? bytes : bytes.toString('utf8')
  return bytes
}

function isUtf8Text (bytes: Buffer): boolean {
  // Without a Content-Type, treat valid UTF-8 as text and anything else as bytes.
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}

/**
 * Parses a service's response body for merging and hooks: JSON → value
 * (invalid JSON stays a string, so a broken backend cannot crash the merge),
 * text → string, other types → bytes.
 */
export function parseResponseBody (bytes: Buffer, contentType: string | string[] | undefined): unknown {
  if (bytes.length === 0) return undefined
  const mt = mediaType(contentType)
  if (isJsonType(mt)) {
    const text = bytes.toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }
  if (isTextType(mt) || mt === '') return bytes.toString('utf8')
  return bytes
}

/** Serializes a body value for an HTTP service or the client, with its content type. */
export function serializeBody (body: unknown, preferredType: string | undefined): { bytes: Buffer, contentType: string } | undefined {
  if (body === undefined || body === null) return body === null ? { bytes: Buffer.from('null'), contentType: 'application/json; charset=utf-8' } : undefined
  if (Buffer.isBuffer(body)) return { bytes: body, contentType: preferredType ?? 'application/octet-stream' }
  if (body instanceof Uint8Array) return { bytes: Buffer.from(body), contentType: preferredType ?? 'application/octet-stream' }
  if (typeof body === 'string') return { bytes: Buffer.from(body, 'utf8'), contentType: preferredType ?? 'text/plain; charset=utf-8' }
  const mt = mediaType(preferredType)
  if (mt === FORM_TYPE && typeof body === 'object') return { bytes: Buffer.from(serializeQuery(body as Record<string, unknown>)), contentType: FORM_TYPE }
  return { bytes: Buffer.from(JSON.stringify(body), 'utf8'), contentType: isJsonType(mt) ? preferredType! : 'application/json; charset=utf-8' }
}

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}
