/**
 * HTTP services (`type: "http"`, PRODUCT §3.1): undici pools with keep-alive,
 * round-robin over a url list that skips an upstream that keeps failing,
 * params substituted percent-encoded, the service URL's own query kept.
 */
import { Pool, type Dispatcher } from 'undici'
import { GatewayError } from '@switchyard/protocol'
import type { HeaderMap } from '../pipeline/headers.js'

type Token = { kind: 'text', text: string } | { kind: 'param', name: string } | { kind: 'wildcard' }

export interface Target {
  readonly url: string
  readonly origin: string
  readonly pool: Pool
  readonly tokens: readonly Token[]
  /** The service URL's own query, without `?` ('' when none). */
  readonly baseQuery: string
  consecutiveFailures: number
  downUntil: number
}

/** Methods a retry may repeat (RFC 9110 §9.2.2). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** Answers a retry may replace (`retries`): the service or a proxy in front of it could not answer this time. */
export const RETRY_STATUS: ReadonlySet<number> = new Set([502, 503, 504])

/** Consecutive connection failures after which an upstream is skipped for a while. */
const FAILURES_BEFORE_SKIP = 3
const SKIP_MS = 5000

/** One undici Pool per origin, shared by every service that talks to it. */
export class PoolRegistry {
  readonly #pools = new Map<string, Pool>()
  readonly #options: Pool.Options

  constructor (options: Pool.Options = {}) {
    this.#options = { connections: 128, pipelining: 1, keepAliveTimeout: 30_000, ...options }
  }

  get (origin: string): Pool {
    let p = this.#pools.get(origin)
    if (p === undefined) {
      p = new Pool(origin, this.#options)
      this.#pools.set(origin, p)
    }
    return p
  }

  async close (): Promise<void> {
    await Promise.all([...this.#pools.values()].map(async p => await p.close().catch(() => p.destroy())))
    this.#pools.clear()
  }
}

function tokenize (pathname: string, routeParams: ReadonlySet<string>): Token[] {
  const tokens: Token[] = []
  const re = /:([A-Za-z_][A-Za-z0-9_]*)|\*/g
  let last = 0
  for (const m of pathname.matchAll(re)) {
    const isParam = m[1] !== undefined && routeParams.has(m[1])
    const isWildcard = m[0] === '*' && routeParams.has('*')
    if (!isParam && !isWildcard) continue
    if (m.index > last) tokens.push({ kind: 'text', text: pathname.slice(last, m.index) })
    tokens.push(isParam ? { kind: 'param', name: m[1]! } : { kind: 'wildcard' })
    last = m.index + m[0].length
  }
  if (last < pathname.length) tokens.push({ kind: 'text', text: pathname.slice(last) })
  return tokens
}

/** Encodes one path segment; `.` and `..` are encoded too so a param can never climb a path. */
export function encodeSegment (value: string): string {
  const e = encodeURIComponent(value)
  return e === '.' || e === '..' ? e.replace(/\./g, '%2E') : e
}

/** Builds the upstream path: params percent-encoded, the service's own query first, then the client's. */
export function buildPath (target: Target, params: Readonly<Record<string, string>>, clientQuery: string): string {
  let path = ''
  for (const t of target.tokens) {
    if (t.kind === 'text') path += t.text
    else if (t.kind === 'param') path += encodeSegment(params[t.name] ?? '')
    else path += (params['*'] ?? '').split('/').map(encodeSegment).join('/')
  }
  if (path === '') path = '/'
  const q = target.baseQuery === '' ? clientQuery : clientQuery === '' ? target.baseQuery : `${target.baseQuery}&${clientQuery}`
  return q === '' ? path : `${path}?${q}`
}

export function makeTargets (urls: string | string[], routeParams: ReadonlySet<string>, pools: PoolRegistry): Target[] {
  return (Array.isArray(urls) ? urls : [urls]).map(u => {
    const url = new URL(u)
    return {
      url: u,
      origin: url.origin,
      pool: pools.get(url.origin),
      tokens: tokenize(url.pathname, routeParams),
      baseQuery: url.search.slice(1),
      consecutiveFailures: 0,
      downUntil: 0
    }
  })
}

/** Round-robin that skips an upstream marked down, unless every one is. */
export class TargetSet {
  readonly targets: readonly Target[]
  #next = 0

  constructor (targets: Target[]) { this.targets = targets }

  pick (): Target {
    const n = this.targets.length
    if (n === 1) return this.targets[0]!
    const now = Date.now()
    for (let i = 0; i < n; i++) {
      const t = this.targets[(this.#next + i) % n]!
      if (t.downUntil <= now) {
        this.#next = (this.#next + i + 1) % n
        return t
      }
    }
    const t = this.targets[this.#next % n]!
    this.#next = (this.#next + 1) % n
    return t
  }

  succeeded (t: Target): void { t.consecutiveFailures = 0 }
  failed (t: Target): void {
    if (++t.consecutiveFailures >= FAILURES_BEFORE_SKIP) t.downUntil = Date.now() + SKIP_MS
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'])

/** Maps an undici/network error to the catalogue, keeping the original as `cause` (never shown to clients). */
export function upstreamError (err: unknown, service: string, timedOut: boolean): GatewayError {
  if (err instanceof GatewayError) return err
  const code = (err as { code?: string } | null)?.code ?? ''
  if (timedOut || TIMEOUT_CODES.has(code)) return new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', { service, cause: err })
  if (UNREACHABLE_CODES.has(code)) return new GatewayError('GW_ERR_UPSTREAM_UNREACHABLE', { service, cause: err })
  return new GatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', { service, cause: err })
}

export interface HttpCall {
  method: string
  path: string
  /** An object, or a flat `[name, value, …]` list. */
  headers: HeaderMap | string[]
  body: Dispatcher.DispatchOptions['body']
  timeoutMs: number
  signal: AbortSignal | undefined
}

/**
 * One request to one pool. `timeoutMs` bounds the wait for the response head
 * and each gap in the body. Throws a GatewayError, never a raw one.
 */
export async function callTarget (pool: Pool, call: HttpCall, service: string): Promise<Dispatcher.ResponseData> {
  const client = call.signal
  if (call.timeoutMs >= PRECISE_TIMER_BELOW_MS && client === undefined) {
    // Long timeouts: undici's own timer (±0.5 s) costs nothing per request.
    try {
      return await pool.request({ method: call.method as Dispatcher.HttpMethod, path: call.path, headers: call.headers, body: call.body ?? null, headersTimeout: call.timeoutMs, bodyTimeout: call.timeoutMs })
    } catch (err) {
      throw upstreamError(err, service, false)
    }
  }
  const ac = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; ac.abort() }, call.timeoutMs)
  const onClientAbort = (): void => ac.abort()
  client?.addEventListener('abort', onClientAbort, { once: true })
  try {
    return await pool.request({
      method: call.method as Dispatcher.HttpMethod,
      path: call.path,
      headers: call.headers,
      body: call.body ?? null,
      signal: ac.signal,
      headersTimeout: 0,
      bodyTimeout: call.timeoutMs
    })
  } catch (err) {
    if (client?.aborted === true && !timedOut) throw new GatewayError('GW_ERR_CLIENT_CLOSED', { service, cause: err })
    throw upstreamError(err, service, timedOut)
  } finally {
    clearTimeout(timer)
    client?.removeEventListener('abort', onClientAbort)
  }
}

/**
 * Timeouts shorter than this run on a timer of the gateway's own: undici's
 * timers tick every half second, which would turn 300 ms into a second.
 */
export const PRECISE_TIMER_BELOW_MS = 5000

/** Sends a request to a full URL (rollbacks): a fresh pool from the registry, errors returned, not thrown. */
export async function requestUrl (pools: PoolRegistry, url: string, opts: { method: string, headers: HeaderMap, body: Buffer | undefined, timeoutMs: number }): Promise<number> {
  const u = new URL(url)
  const res = await pools.get(u.origin).request({
    method: opts.method as Dispatcher.HttpMethod,
    path: u.pathname + u.search,
    headers: opts.headers,
    body: opts.body ?? null,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs
  })
  await res.body.dump()
  return res.statusCode
}
