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

/** The headers the gateway sets itself (server/forwarding.ts), never passed on from the client as they are. */
const GATEWAY_SET = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id', 'traceparent', 'x-switchyard-claims'])

/** Whether a client's header goes on to a service. */
function forwardable (name: string, listed: Set<string> | undefined, keepContentLength: boolean): boolean {
  if (HOP_BY_HOP.has(name) || name === 'host' || GATEWAY_SET.has(name) || (listed !== undefined && listed.has(name))) return false
  return name !== 'content-length' || keepContentLength
}

/** Headers from a client, ready for a service (before forwarding headers are added). */
export function upstreamRequestHeaders (client: IncomingHttpHeaders, keepContentLength: boolean): HeaderMap {
  const out: HeaderMap = {}
  const listed = connectionListed(client.connection)
  for (const name in client) {
    const v = client[name]
    if (v !== undefined && forwardable(name, listed, keepContentLength)) out[name] = v
  }
  return out
}

/**
 * The same headers as a flat `[name, value, …]` list, an array value as one
 * entry per value: what undici takes without `Object.keys` and a keyed load
 * per name (the streaming path, whose headers nobody edits after).
 */
export function upstreamRequestHeaderList (client: IncomingHttpHeaders, keepContentLength: boolean): string[] {
  const out: string[] = []
  const listed = connectionListed(client.connection)
  for (const name in client) {
    const v = client[name]
    if (v === undefined || !forwardable(name, listed, keepContentLength)) continue
    if (typeof v === 'string') out.push(name, v)
    else for (const one of v) out.push(name, one)
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

/**
 * `Object.hasOwn(added, name)` by comparing with each of the few names:
 * `hasOwn` looks a new string up in V8's string table (hashing it) every time.
 */
function isAdded (added: Readonly<Record<string, string>>, name: string): boolean {
  for (const k in added) if (k === name) return true
  return false
}

/**
 * A service's raw response head (undici's `[name, value, …]` buffers), ready
 * for `writeHead` as a flat `[name, value, …]` list: the same rules as
 * `downstreamResponseHeaders` (hop-by-hop and Connection-listed names dropped),
 * without building undici's header object and then a filtered copy of it.
 * Names keep the service's spelling; duplicates (Set-Cookie) stay separate
 * entries. `added` (lowercase names) and `X-Request-Id` replace the service's
 * headers of the same name.
 */
export function downstreamRawHeaders (raw: readonly Buffer[], added: Readonly<Record<string, string>> | undefined, id: string): string[] {
  const out: string[] = []
  let connection: string | undefined
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'connection') { connection = connection === undefined ? raw[i + 1]!.toString('latin1') : `${connection},${raw[i + 1]!.toString('latin1')}`; continue }
    if (HOP_BY_HOP.has(lower) || lower === 'x-request-id' || (added !== undefined && isAdded(added, lower))) continue
    out.push(name, raw[i + 1]!.toString('latin1'))
  }
  const listed = connectionListed(connection)
  if (listed !== undefined) {
    // Rare: the service named more hop-by-hop headers in its Connection header.
    for (let i = out.length - 2; i >= 0; i -= 2) if (listed.has(out[i]!.toLowerCase())) out.splice(i, 2)
  }
  if (added !== undefined) for (const name in added) out.push(name, added[name]!)
  out.push('x-request-id', id)
  return out
}

/** Response headers that describe one service's bytes and are wrong for a merged body. */
export const REPRESENTATION_HEADERS = new Set(['content-length', 'content-type', 'content-encoding', 'etag', 'last-modified', 'content-md5', 'content-range', 'accept-ranges', 'digest'])
