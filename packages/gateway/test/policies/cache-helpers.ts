/**
 * Shared set-up for the cache tests: gateways with a cached route in front of
 * real backends that count their calls, a Cache-Status parser, and a bounded
 * poll for conditions that have no event (TTL expiry, a reconnect).
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { pino } from 'pino'
import { createGateway, type Gateway } from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/config/types.js'
import type { CacheApi } from '../../src/policies/cache.js'
import { startBackend, type Backend } from '../helpers/backend.js'

export interface AfterHost { after: (fn: () => Promise<void> | void) => void }

export interface Cached {
  url: string
  gw: Gateway
  api: CacheApi
  close: () => Promise<void>
}

/** A gateway on 127.0.0.1:0 with a silent logger, closed by `t.after`. */
export async function startCached (config: GatewayConfig, t: AfterHost): Promise<Cached> {
  const gw = createGateway(config, { logger: pino({ level: 'silent' }) })
  const url = await gw.listen(0, '127.0.0.1')
  const close = async (): Promise<void> => { await gw.close() }
  t.after(close)
  const api = gw.api<CacheApi>('cache')
  if (api === undefined) throw new Error('the gateway provides no cache API: is a route cached?')
  return { url, gw, api, close }
}

/** A backend closed by `t.after`. */
export async function backend (t: AfterHost, handler: (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>): Promise<Backend> {
  let n = 0
  const b = await startBackend(async (req, res) => { await handler(req, res, ++n) })
  t.after(async () => { await b.close() })
  return b
}

/** Answers JSON with the given headers. */
export function reply (res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(bytes.length), ...headers })
  res.end(bytes)
}

/** `{ http: { caching?, routes } }` with one GET route per path, each calling `<backend><path>`. */
export function config (backendUrl: string, routes: Record<string, Record<string, unknown>>, extra: Record<string, unknown> = {}, httpCaching?: unknown): GatewayConfig {
  const r: Record<string, unknown> = {}
  for (const [path, route] of Object.entries(routes)) {
    const method = (route.method as string | undefined) ?? 'GET'
    const { method: _m, servicePath, ...rest } = route
    r[path] = { [method]: { services: { svc: { type: 'http', url: `${backendUrl}${(servicePath as string | undefined) ?? path}` } }, ...rest } }
  }
  return { ...extra, http: { ...(httpCaching !== undefined ? { caching: httpCaching } : {}), routes: r } } as unknown as GatewayConfig
}

export interface Got {
  status: number
  headers: { get: (name: string) => string | null, raw: IncomingHttpHeaders }
  text: string
  json: any
  cache: ParsedStatus
}

export interface GetInit {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
}

/** The Host every test request carries: gateway instances on different ports must see one site, as behind a load balancer. */
export const TEST_HOST = 'cache.test'

/**
 * A request through node:http (fetch cannot set Host), with the Cache-Status
 * member of this cache parsed.
 */
export async function get (base: string, path: string, init: GetInit = {}): Promise<Got> {
  const u = new URL(base)
  const headers: Record<string, string> = { host: TEST_HOST, ...init.headers }
  if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body))
  const req = httpRequest({ host: u.hostname, port: u.port, path, method: init.method ?? 'GET', headers })
  req.end(init.body)
  const [res] = await once(req, 'response') as [IncomingMessage]
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  const h = res.headers
  const one = (name: string): string | null => {
    const v = h[name.toLowerCase()]
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
  }
  return { status: res.statusCode ?? 0, headers: { get: one, raw: h }, text, json, cache: parseCacheStatus(one('cache-status')) }
}

export interface ParsedStatus {
  raw: string | null
  hit: boolean
  fwd?: string
  fwdStatus?: number
  stored: boolean
  collapsed: boolean
  ttl?: number
  key?: string
  detail?: string
}

/** The Switchyard member of a Cache-Status field (RFC 9211). */
export function parseCacheStatus (raw: string | null): ParsedStatus {
  const out: ParsedStatus = { raw, hit: false, stored: false, collapsed: false }
  if (raw === null) return out
  const member = raw.split(/,\s*(?=Switchyard)/).find(m => m.startsWith('Switchyard'))
  if (member === undefined) return out
  for (const part of member.split(';').slice(1).map(p => p.trim())) {
    const eq = part.indexOf('=')
    const name = eq === -1 ? part : part.slice(0, eq)
    const value = eq === -1 ? undefined : part.slice(eq + 1)
    switch (name) {
      case 'hit': out.hit = true; break
      case 'stored': out.stored = true; break
      case 'collapsed': out.collapsed = true; break
      case 'fwd': out.fwd = value; break
      case 'fwd-status': out.fwdStatus = Number(value); break
      case 'ttl': out.ttl = Number(value); break
      case 'key': out.key = JSON.parse(value!) as string; break
      case 'detail': out.detail = value; break
    }
  }
  return out
}

/**
 * Re-evaluates `probe` until it returns a value: for conditions with no event
 * to await (a TTL running out, a reconnect). Bounded; never a fixed sleep.
 */
export async function until<T> (probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/** A gate a backend awaits: `open()` lets every waiting (and later) caller through. */
export function gate (): { wait: () => Promise<void>, open: () => void } {
  let open!: () => void
  const p = new Promise<void>(resolve => { open = resolve })
  return { wait: async () => { await p }, open }
}
