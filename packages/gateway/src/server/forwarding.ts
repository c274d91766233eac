/**
 * What every service learns about the client (PRODUCT §2.2–§2.3): the request
 * id, W3C trace context, and X-Forwarded-For/-Proto/-Host — the client's
 * X-Forwarded-For is kept only when the peer is a trusted proxy.
 */
import { randomFillSync } from 'node:crypto'
import type { HeaderMap } from '../pipeline/headers.js'
import type { GatewayRequest } from '../pipeline/types.js'

const REQUEST_ID = /^[\w\-.:@/+=]{1,200}$/
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The client's `x-request-id` when it is a sane token, else a new UUID. */
export function requestId (header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : uuid()
}

// Request, span and trace ids come from a pool of random bytes refilled in place
// (crypto.randomFillSync) 64 KiB at a time, ~1,600 requests' worth: not one
// randomBytes() call per request, nor a new buffer per refill. Measured in a loop
// here: randomBytes(4096) 11–18 µs (every ~100 requests), randomFillSync of 64 KiB
// 13 µs. Every reader copies its bytes out at once (to a string), so refilling the
// same buffer is safe.
const POOL_BYTES = 65536
const pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_BYTES))
let offset = 0
function take (bytes: number): number {
  if (offset + bytes > POOL_BYTES) { randomFillSync(pool); offset = 0 }
  const at = offset
  offset += bytes
  return at
}

function randomHex (bytes: number): string {
  const at = take(bytes)
  return pool.toString('hex', at, at + bytes)
}

/** For byte b, HEX_CODES[2b] and HEX_CODES[2b + 1] are the character codes of its two hex digits. */
const HEX_CODES = new Uint8Array(512)
for (let b = 0; b < 256; b++) {
  const s = b.toString(16).padStart(2, '0')
  HEX_CODES[2 * b] = s.charCodeAt(0)
  HEX_CODES[2 * b + 1] = s.charCodeAt(1)
}
const UUID_TEXT = Buffer.alloc(36)

/**
 * A random (version 4) UUID, as crypto.randomUUID() gives, written into one
 * 36-byte buffer and read out as one string. crypto.randomUUID() joins twenty
 * pieces with `+`, ~0.6 KB of intermediate strings a request (a sampling heap
 * profile of the passthrough; docs/performance.md).
 */
export function uuid (): string {
  const at = take(16)
  const p = pool
  p[at + 6] = (p[at + 6]! & 0x0f) | 0x40 // version 4
  p[at + 8] = (p[at + 8]! & 0x3f) | 0x80 // variant 10
  let j = 0
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) UUID_TEXT[j++] = 0x2d // '-'
    const b = p[at + i]!
    UUID_TEXT[j++] = HEX_CODES[2 * b]!
    UUID_TEXT[j++] = HEX_CODES[2 * b + 1]!
  }
  return UUID_TEXT.toString('latin1', 0, 36)
}

/** Writes `bytes` pool bytes from `at` as hex into `out` from `j`. */
function hexInto (out: Buffer, j: number, at: number, bytes: number): void {
  const p = pool
  for (let i = 0; i < bytes; i++) {
    const b = p[at + i]!
    out[j++] = HEX_CODES[2 * b]!
    out[j++] = HEX_CODES[2 * b + 1]!
  }
}

/** `00-<trace id>-<span id>-01`: the dashes and flags stay, the ids are written over for each new trace. */
const TRACE_TEXT = Buffer.from(`00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`, 'latin1')

/**
 * Continues the client's trace with a new span of the gateway's, or starts
 * one. A new trace (the usual case) is written into one 55-byte buffer and
 * read out as one string, as `uuid()` is: not two hex strings and a template.
 */
export function traceparent (header: string | string[] | undefined): string {
  if (typeof header === 'string') {
    const m = TRACEPARENT.exec(header.trim().toLowerCase())
    if (m !== null && m[1] !== 'ff' && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!)) return `00-${m[2]}-${randomHex(8)}-${m[4]}`
  }
  const at = take(24)
  hexInto(TRACE_TEXT, 3, at, 16) // the trace id
  hexInto(TRACE_TEXT, 36, at + 16, 8) // the span id
  return TRACE_TEXT.toString('latin1', 0, 55)
}

/** Appends the forwarding headers to a flat `[name, value, …]` list (the streaming path's). */
export function appendForwardingHeaders (list: string[], greq: GatewayRequest): void {
  list.push('x-forwarded-for', greq.forwardedFor, 'x-forwarded-proto', greq.forwardedProto)
  if (greq.forwardedHost !== undefined) list.push('x-forwarded-host', greq.forwardedHost)
  list.push('x-request-id', greq.id, 'traceparent', greq.traceparent)
  if (greq.claims !== undefined) list.push(CLAIMS_HEADER, encodedClaims(greq.claims))
}

/** One list for addForwardingHeaders, filled and read synchronously: no array per request. */
const SCRATCH: string[] = []

/** Sets the forwarding headers on a header object, replacing any of the same name. */
export function addForwardingHeaders (headers: HeaderMap, greq: GatewayRequest): void {
  SCRATCH.length = 0
  appendForwardingHeaders(SCRATCH, greq)
  for (let i = 0; i < SCRATCH.length; i += 2) headers[SCRATCH[i]!] = SCRATCH[i + 1]!
  SCRATCH.length = 0 // holds no request's strings once done
  if (greq.claims === undefined) delete headers[CLAIMS_HEADER] // never believe a client's claims header
}

/** Encoded once per claims object: the verifier hands out the same object for a token it knows. */
const encoded = new WeakMap<object, string>()
function encodedClaims (claims: Record<string, unknown>): string {
  let v = encoded.get(claims)
  if (v === undefined) encoded.set(claims, v = Buffer.from(JSON.stringify(claims)).toString('base64url'))
  return v
}

/** Verified claims for HTTP services: base64url of their JSON. Set only by the gateway. */
export const CLAIMS_HEADER = 'x-switchyard-claims'
