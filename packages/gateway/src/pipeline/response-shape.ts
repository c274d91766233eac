/**
 * Conversions between the gateway's ServiceResponse, the Prism-shaped
 * HttpResponse that hooks and Redis services use, and the wire response.
 */
import type { HttpResponse } from '@switchyard/protocol'
import { serializeBody } from './body.js'
import { copyOwn } from './objects.js'
import type { ServiceResponse } from './merge.js'
import type { GatewayResponse } from './types.js'

/** The Prism-shaped response hooks see. */
export function toHttpResponse (r: ServiceResponse): HttpResponse {
  const out: HttpResponse = { status: r.status, headers: copyOwn(r.headers), body: r.body }
  if (r.cookies !== undefined) out.cookies = r.cookies
  if (r.redirect !== undefined) out.redirect = r.redirect
  if (r.contentType !== undefined) out.contentType = r.contentType
  return out
}

/** A Prism-shaped response (from a hook or a Redis reply) as the gateway holds it. */
export function toServiceResponse (r: HttpResponse): ServiceResponse {
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(r.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = typeof v === 'number' ? String(v) : v
  const body = r.bodyEncoding === 'base64' && typeof r.body === 'string' ? Buffer.from(r.body, 'base64') : r.body
  return {
    status: typeof r.status === 'number' ? r.status : body === undefined && r.redirect === undefined ? 204 : 200,
    headers,
    body,
    raw: false,
    cookies: r.cookies,
    redirect: r.redirect,
    contentType: r.contentType
  }
}

function serializeCookie (c: NonNullable<ServiceResponse['cookies']>[number]): string {
  let s = `${c.name}=${encodeURIComponent(c.value)}`
  if (c.path !== undefined) s += `; Path=${c.path}`
  if (c.domain !== undefined) s += `; Domain=${c.domain}`
  if (c.maxAge !== undefined) s += `; Max-Age=${Math.floor(c.maxAge)}`
  if (c.expires !== undefined) s += `; Expires=${c.expires}`
  if (c.httpOnly === true) s += '; HttpOnly'
  if (c.secure === true) s += '; Secure'
  if (c.sameSite !== undefined) s += `; SameSite=${c.sameSite.charAt(0).toUpperCase()}${c.sameSite.slice(1).toLowerCase()}`
  return s
}

/** The wire form of a merged or single response. */
export function toGatewayResponse (r: ServiceResponse): GatewayResponse {
  // Content-Length is the serialized body's: left out rather than deleted (a delete makes the object a slow dictionary).
  const headers = copyOwn(r.headers, 'content-length')
  let status = r.status
  if (r.redirect !== undefined) {
    headers.location = r.redirect
    if (status < 300 || status > 399) status = 302
  }
  if (r.cookies !== undefined && r.cookies.length > 0) {
    const prev = headers['set-cookie']
    headers['set-cookie'] = [...(prev === undefined ? [] : Array.isArray(prev) ? prev : [prev]), ...r.cookies.map(serializeCookie)]
  }
  let body: Buffer | undefined
  if (r.raw && Buffer.isBuffer(r.body)) {
    body = r.body
  } else {
    const preferred = r.contentType ?? (Array.isArray(headers['content-type']) ? headers['content-type'][0] : headers['content-type'])
    const s = serializeBody(r.body, preferred)
    if (s !== undefined) { body = s.bytes; headers['content-type'] = s.contentType } else delete headers['content-type']
  }
  return { status, headers, body }
}
