/**
 * Header handling between client, gateway and services (RFC 9110 §7.6.1):
 * hop-by-hop headers are dropped in both directions, and a response never
 * carries both Content-Length and Transfer-Encoding.
 */
import type { IncomingHttpHeaders } from 'node:http'

export type HeaderMap = Record<string, string | string[]>

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'http2-settings'
])

/** Names listed in a Connection header are hop-by-hop too. */
function connectionListed (value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined // the usual values name no header
  const s = new Set<string>()
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const n = part.trim().toLowerCase()
    if (n !== '' && n !== 'close' && n !== 'keep-alive') s.add(n)
  }
  return s.size === 0 ? undefined : s
}

/** Headers from a client, ready for a service (before forwarding headers are added). */
export function upstreamRequestHeaders (client: IncomingHttpHeaders, keepContentLength: boolean): HeaderMap {
  const out: HeaderMap = {}
  const listed = connectionListed(client.connection)
  for (const name in client) {
    const v = client[name]
    if (v === undefined) continue
    if (HOP_BY_HOP.has(name) || name === 'host' || (listed !== undefined && listed.has(name))) continue
    if (name === 'content-length' && !keepContentLength) continue
    if (name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host' || name === 'forwarded' || name === 'x-switchyard-claims') continue
    out[name] = v
  }
  return out
}

/** Headers from a service, ready for the client. `dropLength` when the gateway re-frames the body. */
export function downstreamResponseHeaders (upstream: Record<string, string | string[] | undefined>, dropLength: boolean): HeaderMap {
  const out: HeaderMap = {}
  const listed = connectionListed(upstream.connection)
  for (const name in upstream) {
    const v = upstream[name]
    if (v === undefined) continue
    if (HOP_BY_HOP.has(name) || (listed !== undefined && listed.has(name))) continue
    if (dropLength && name === 'content-length') continue
    out[name] = v
  }
  return out
}

/** Response headers that describe one service's bytes and are wrong for a merged body. */
export const REPRESENTATION_HEADERS = new Set(['content-length', 'content-type', 'content-encoding', 'etag', 'last-modified', 'content-md5', 'content-range', 'accept-ranges', 'digest'])
