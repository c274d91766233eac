/**
 * What every service learns about the client (PRODUCT §2.2–§2.3): the request
 * id, W3C trace context, and X-Forwarded-For/-Proto/-Host — the client's
 * X-Forwarded-For is kept only when the peer is a trusted proxy.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { HeaderMap } from '../pipeline/headers.js'
import type { GatewayRequest } from '../pipeline/types.js'

const REQUEST_ID = /^[\w\-.:@/+=]{1,200}$/
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The client's `x-request-id` when it is a sane token, else a new UUID. */
export function requestId (header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID()
}

// Span and trace ids come from a pool of random bytes refilled 4 KiB at a time,
// not from one randomBytes() call per request.
const POOL_BYTES = 4096
let pool = randomBytes(POOL_BYTES)
let offset = 0
function randomHex (bytes: number): string {
  if (offset + bytes > POOL_BYTES) { pool = randomBytes(POOL_BYTES); offset = 0 }
  const s = pool.toString('hex', offset, offset + bytes)
  offset += bytes
  return s
}

/** Continues the client's trace with a new span of the gateway's, or starts one. */
export function traceparent (header: string | string[] | undefined): string {
  const span = randomHex(8)
  if (typeof header === 'string') {
    const m = TRACEPARENT.exec(header.trim().toLowerCase())
    if (m !== null && m[1] !== 'ff' && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!)) return `00-${m[2]}-${span}-${m[4]}`
  }
  return `00-${randomHex(16)}-${span}-01`
}

export function addForwardingHeaders (headers: HeaderMap, greq: GatewayRequest): void {
  headers['x-forwarded-for'] = greq.forwardedFor
  headers['x-forwarded-proto'] = greq.forwardedProto
  if (greq.forwardedHost !== undefined) headers['x-forwarded-host'] = greq.forwardedHost
  headers['x-request-id'] = greq.id
  headers.traceparent = greq.traceparent
  if (greq.claims !== undefined) headers[CLAIMS_HEADER] = encodedClaims(greq.claims)
  else delete headers[CLAIMS_HEADER] // never believe a client's claims header
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
