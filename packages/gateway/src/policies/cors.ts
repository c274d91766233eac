/**
 * CORS (PRODUCT §4.5; the Fetch standard's CORS protocol). Prism's top-level
 * `cors` (@koa/cors options), `http.cors`, or a route's own `cors` (which
 * replaces the wider one; `false` or `"none"` turns it off for the route).
 *
 * - A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`)
 *   is answered here with 204 and never reaches a service; from an origin,
 *   method or header that is not allowed it is refused with 403
 *   GW_ERR_CORS_REJECTED and no CORS headers.
 * - Other requests pass through; when their origin is allowed, the response
 *   (errors from later policies included) gets `Access-Control-Allow-Origin`,
 *   and credentials and exposed headers when configured. A service's own
 *   `Access-Control-*` headers are replaced, so the gateway's settings hold.
 * - `Vary: Origin` is added whenever the answer depends on the origin.
 *
 * The front door runs a route's policies only for the methods it has, so a
 * preflight reaches this policy on routes with an `OPTIONS` or `ALL` method;
 * `corsPreflight` is the handler the front door can use for the others.
 */
import { GatewayError, isGatewayError, type HttpRequest } from '@switchyard/protocol'
import type { GatewayConfig } from '../config/types.js'
import { configInvalid, formatPath } from '../config/validate.js'
import { parseQuery } from '../pipeline/body.js'
import { runHook } from '../pipeline/hooks.js'
import { copyOwn } from '../pipeline/objects.js'
import { errorResponse } from '../pipeline/respond.js'
import type { GatewayRequest, GatewayResponse } from '../pipeline/types.js'
import { ipList } from './ip-list.js'
import { compose, type Handler, type Policy, type PolicyDeps, type RouteTarget } from './types.js'

/** What an `origin` or `credentials` function receives: a small koa-like context (as @koa/cors passed). */
export interface CorsContext {
  /** A request header by name, case-insensitive; '' when absent (koa `ctx.get`). */
  get: (name: string) => string
  readonly headers: HttpRequest['headers']
  readonly header: HttpRequest['headers']
  readonly method: string
  readonly path: string
  /** The client address (trusted proxies honoured). */
  readonly ip: string
  /** The request as hooks see it elsewhere. */
  readonly request: HttpRequest
}

/** Allowed origin for a request: true (this origin), a value for Access-Control-Allow-Origin, or false/empty to refuse. */
export type CorsOriginFn = (ctx: CorsContext) => boolean | string | undefined | null | Promise<boolean | string | undefined | null>

/**
 * CORS options, @koa/cors names.
 * @example
 * cors: { origin: ['https://shop.example', 'https://admin.shop.example'], credentials: true, maxAge: 600 }
 */
export interface CorsOptions {
  /** `"*"`, one origin, a list (strings or RegExps), a RegExp, or a function. @default "*" */
  origin?: string | RegExp | Array<string | RegExp> | CorsOriginFn
  /** Methods a preflight may ask for (comma-separated string or list). @default "GET,HEAD,PUT,POST,DELETE,PATCH" */
  allowMethods?: string | string[]
  /** Headers a preflight may ask for; `"*"` for any. @default whatever the preflight asks for */
  allowHeaders?: string | string[]
  /** Response headers the browser may show the page. @default none */
  exposeHeaders?: string | string[]
  /** Seconds a browser may cache a preflight answer. @default not sent */
  maxAge?: number | string
  /** Send `Access-Control-Allow-Credentials: true` (a function decides per request). @default false */
  credentials?: boolean | ((ctx: CorsContext) => boolean | Promise<boolean>)
  /** @koa/cors option; CORS headers are always kept on errors here. */
  keepHeadersOnError?: boolean
  /** Answer Private Network Access preflights (`Access-Control-Allow-Private-Network: true`). @default false */
  privateNetworkAccess?: boolean
  /** Add `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`. @default false */
  secureContext?: boolean
}

/** Config keys this module implements; start refuses a key no module implements. */
export const keys: readonly string[] = ['cors']

const DEFAULT_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH']
/** Methods a browser never needs permission for (Fetch §3.2.2 CORS-safelisted methods). */
const SAFELISTED_METHODS = new Set(['GET', 'HEAD', 'POST'])
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const KNOWN_KEYS = new Set(['origin', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'maxAge', 'credentials', 'keepHeadersOnError', 'privateNetworkAccess', 'secureContext'])

type OriginRule =
  | { kind: 'any' }
  | { kind: 'list', exact: ReadonlySet<string>, patterns: readonly RegExp[] }
  | { kind: 'fn', fn: CorsOriginFn }

interface CompiledCors {
  readonly origin: OriginRule
  readonly methods: readonly string[] | '*'
  readonly methodsHeader: string
  readonly headers: ReadonlySet<string> | '*' | undefined
  readonly headersHeader: string | undefined
  readonly expose: string | undefined
  readonly maxAge: string | undefined
  readonly credentials: boolean | ((ctx: CorsContext) => boolean | Promise<boolean>)
  readonly privateNetwork: boolean
  readonly secureContext: boolean
}

interface Issue { path: readonly string[], message: string }

function configError (issues: readonly Issue[]): GatewayError {
  return configInvalid(issues.map(i => ({ path: formatPath(i.path), message: i.message })))
}

/** `https://Shop.example:443/` → `https://shop.example`; undefined when it is not an origin. */
function normalizeOrigin (s: string): string | undefined {
  if (s === 'null') return s // opaque origins (sandboxed frames, file:) send the literal "null"
  try {
    const u = new URL(s)
    if (u.origin === 'null' || u.pathname.length > 1 || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') return undefined
    return u.origin
  } catch {
    return undefined
  }
}

/** A comma-separated string or a list, as a list of trimmed tokens; undefined when malformed. */
function tokenList (v: unknown): string[] | undefined {
  const parts = typeof v === 'string' ? v.split(',') : Array.isArray(v) && v.every(x => typeof x === 'string') ? v as string[] : undefined
  if (parts === undefined) return undefined
  const out = parts.map(p => p.trim()).filter(p => p !== '')
  return out.every(p => p === '*' || TOKEN.test(p)) ? out : undefined
}

function compile (raw: unknown, path: readonly string[]): CompiledCors {
  const issues: Issue[] = []
  const at = (k: string, message: string, ...more: string[]): void => { issues.push({ path: [...path, k, ...more], message }) }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw configError([{ path, message: 'expected an object (the CORS options), or false / "none"' }])
  const o = raw as Record<string, unknown>
  for (const k of Object.keys(o)) if (!KNOWN_KEYS.has(k) && o[k] !== undefined) at(k, 'unknown key')

  let origin: OriginRule = { kind: 'any' }
  const ov = o.origin
  if (typeof ov === 'function') origin = { kind: 'fn', fn: ov as CorsOriginFn }
  else if (ov !== undefined && ov !== '*') {
    const entries = Array.isArray(ov) ? ov as unknown[] : [ov]
    const exact = new Set<string>()
    const patterns: RegExp[] = []
    if (entries.length === 0) at('origin', 'expected at least one origin')
    entries.forEach((e, i) => {
      const p = Array.isArray(ov) ? [String(i)] : []
      if (e instanceof RegExp) { patterns.push(e); return }
      const n = typeof e === 'string' ? normalizeOrigin(e.trim().replace(/\/$/, '')) : undefined
      if (n === undefined) at('origin', e === '*' ? '"*" cannot be mixed with other origins' : 'expected an origin such as "https://shop.example" (scheme, host and port only), "*", a RegExp or a function', ...p)
      else exact.add(n.toLowerCase())
    })
    origin = { kind: 'list', exact, patterns }
  }

  let methods: string[] | '*' = DEFAULT_METHODS
  if (o.allowMethods !== undefined) {
    const m = tokenList(o.allowMethods)
    if (m === undefined || m.length === 0) at('allowMethods', 'expected methods, as "GET,POST" or ["GET", "POST"]')
    else methods = m.includes('*') ? '*' : m.map(x => x.toUpperCase())
  }
  let headers: Set<string> | '*' | undefined
  let headersHeader: string | undefined
  if (o.allowHeaders !== undefined) {
    const h = tokenList(o.allowHeaders)
    if (h === undefined) at('allowHeaders', 'expected header names, as "content-type,authorization" or a list')
    else if (h.includes('*')) headers = '*'
    else { headers = new Set(h.map(x => x.toLowerCase())); headersHeader = h.join(',') }
  }
  let expose: string | undefined
  if (o.exposeHeaders !== undefined) {
    const h = tokenList(o.exposeHeaders)
    if (h === undefined) at('exposeHeaders', 'expected header names, as "x-total-count,etag" or a list')
    else if (h.length > 0) expose = h.join(',')
  }
  let maxAge: string | undefined
  if (o.maxAge !== undefined) {
    const n = typeof o.maxAge === 'string' && /^\d+$/.test(o.maxAge.trim()) ? Number(o.maxAge) : o.maxAge
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) at('maxAge', 'expected seconds (an integer ≥ 0)')
    else maxAge = String(n)
  }
  const credentials = o.credentials ?? false
  if (typeof credentials !== 'boolean' && typeof credentials !== 'function') at('credentials', 'expected true, false or a function')
  for (const k of ['keepHeadersOnError', 'privateNetworkAccess', 'secureContext']) if (o[k] !== undefined && typeof o[k] !== 'boolean') at(k, 'expected true or false')
  if (issues.length > 0) throw configError(issues)
  return {
    origin,
    methods,
    methodsHeader: methods === '*' ? '*' : methods.join(','),
    headers,
    headersHeader,
    expose,
    maxAge,
    credentials: credentials as CompiledCors['credentials'],
    privateNetwork: o.privateNetworkAccess === true,
    secureContext: o.secureContext === true
  }
}

function chooseCors (target: RouteTarget, config: GatewayConfig): { value: unknown, path: readonly string[] } | undefined {
  const own = (target.route as { cors?: unknown }).cors
  if (own !== undefined) return { value: own, path: ['http', 'routes', target.path, target.method, 'cors'] }
  const http = (config.http as { cors?: unknown } | undefined)?.cors
  if (http !== undefined) return { value: http, path: ['http', 'cors'] }
  const top = (config as { cors?: unknown }).cors
  if (top !== undefined) return { value: top, path: ['cors'] }
  return undefined
}

function one (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function context (greq: GatewayRequest): CorsContext {
  const headers = { ...greq.headers }
  const request: HttpRequest = {
    path: greq.path,
    method: greq.method,
    params: { ...greq.params },
    query: parseQuery(greq.rawQuery),
    headers,
    remoteAddress: greq.remoteAddress,
    remotePort: greq.remotePort
  }
  return {
    get: (name) => {
      const v = headers[name.toLowerCase()]
      return Array.isArray(v) ? v.join(', ') : v ?? ''
    },
    headers,
    header: headers,
    method: greq.method,
    path: greq.path,
    ip: greq.remoteAddress,
    request
  }
}

/** Adds `names` to a response's Vary header, once each. */
function addVary (headers: Record<string, string | string[]>, ...names: string[]): void {
  const key = Object.keys(headers).find(k => k.toLowerCase() === 'vary') ?? 'vary'
  const cur = headers[key]
  const list = (Array.isArray(cur) ? cur.join(',') : cur ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  if (list.includes('*')) return
  for (const n of names) if (!list.some(x => x.toLowerCase() === n.toLowerCase())) list.push(n)
  if (key !== 'vary') delete headers[key]
  headers.vary = list.join(', ')
}

/** Removes a service's own CORS headers: the gateway's settings decide. */
function dropCorsHeaders (headers: Record<string, string | string[]>): void {
  for (const k of Object.keys(headers)) if (k.toLowerCase().startsWith('access-control-')) delete headers[k]
}

const compiledByGateway = new WeakMap<PolicyDeps, Map<unknown, CompiledCors>>()

interface Decision {
  /** The Access-Control-Allow-Origin value; undefined when the origin is refused. */
  allowOrigin: string | undefined
  credentials: boolean
  /** Whether the answer depends on the request's Origin. */
  varies: boolean
}

/**
 * The CORS policy for a route, or undefined when no CORS settings apply.
 * Throws GW_ERR_CONFIG_INVALID at start for bad options.
 */
export function cors (target: RouteTarget, deps: PolicyDeps): Policy | undefined {
  const chosen = chooseCors(target, deps.config)
  if (chosen === undefined || chosen.value === false || chosen.value === 'none') return undefined
  let cache = compiledByGateway.get(deps)
  if (cache === undefined) compiledByGateway.set(deps, cache = new Map())
  let compiled = cache.get(chosen.value)
  if (compiled === undefined) cache.set(chosen.value, compiled = compile(chosen.value, chosen.path))
  const c = compiled

  async function decide (greq: GatewayRequest, origin: string): Promise<Decision> {
    let ctx: CorsContext | undefined
    const getCtx = (): CorsContext => (ctx ??= context(greq))
    let credentials = false
    if (typeof c.credentials === 'function') {
      const fn = c.credentials
      credentials = await runHook('cors.credentials', greq, () => fn(getCtx())) === true
    } else credentials = c.credentials
    const rule = c.origin
    if (rule.kind === 'any') {
      // "*" cannot carry credentials (Fetch §3.2.5): reflect the origin instead, as @koa/cors does.
      return credentials ? { allowOrigin: origin, credentials, varies: true } : { allowOrigin: '*', credentials, varies: false }
    }
    if (rule.kind === 'list') {
      const ok = rule.exact.has(origin.toLowerCase()) || rule.patterns.some(p => { p.lastIndex = 0; return p.test(origin) })
      return { allowOrigin: ok ? origin : undefined, credentials, varies: true }
    }
    const fn = rule.fn
    const r = await runHook('cors.origin', greq, () => fn(getCtx()))
    const allowOrigin = r === true ? origin : typeof r === 'string' && r !== '' ? (r === '*' && credentials ? origin : r) : undefined
    return { allowOrigin, credentials, varies: true }
  }

  function rejectPreflight (greq: GatewayRequest, reason: string, varies: boolean): GatewayResponse {
    greq.log.debug({ reqId: greq.id, reason }, 'CORS preflight refused')
    const res = errorResponse(new GatewayError('GW_ERR_CORS_REJECTED', { message: `The CORS preflight was refused: ${reason}` }), greq.id)
    if (varies) addVary(res.headers, 'Origin')
    return res
  }

  function preflight (greq: GatewayRequest, d: Decision, requestMethod: string): GatewayResponse {
    if (d.allowOrigin === undefined) return rejectPreflight(greq, 'the origin is not allowed', d.varies)
    const method = requestMethod.trim().toUpperCase()
    if (c.methods !== '*' && !c.methods.includes(method) && !SAFELISTED_METHODS.has(method)) return rejectPreflight(greq, 'the method is not allowed', d.varies)
    const asked = (one(greq.headers['access-control-request-headers']) ?? '').split(',').map(s => s.trim().toLowerCase()).filter(s => s !== '')
    const h: Record<string, string | string[]> = { 'access-control-allow-origin': d.allowOrigin }
    if (d.credentials) h['access-control-allow-credentials'] = 'true'
    // With credentials a "*" is taken literally by browsers, so name what was asked for.
    h['access-control-allow-methods'] = c.methods === '*' && d.credentials ? method : c.methodsHeader
    const vary: string[] = d.varies ? ['Origin'] : []
    if (c.headers === undefined || (c.headers === '*' && d.credentials)) {
      if (asked.length > 0) h['access-control-allow-headers'] = asked.join(',')
      vary.push('Access-Control-Request-Headers')
    } else if (c.headers === '*') h['access-control-allow-headers'] = '*'
    else {
      const allowed = c.headers
      if (asked.some(x => !allowed.has(x))) return rejectPreflight(greq, 'a requested header is not allowed', d.varies)
      h['access-control-allow-headers'] = c.headersHeader!
    }
    if (c.maxAge !== undefined) h['access-control-max-age'] = c.maxAge
    if (c.privateNetwork && one(greq.headers['access-control-request-private-network']) === 'true') h['access-control-allow-private-network'] = 'true'
    if (vary.length > 0) addVary(h, ...vary)
    return { status: 204, headers: h, body: undefined }
  }

  /**
   * The response with the gateway's CORS headers for decision `d` (undefined: not a CORS
   * request). Copies the headers: a response may be shared, e.g. a cache hit.
   */
  function decorate (res: GatewayResponse, d: Decision | undefined): GatewayResponse {
    const headers = copyOwn(res.headers)
    dropCorsHeaders(headers)
    if (d?.allowOrigin !== undefined) {
      headers['access-control-allow-origin'] = d.allowOrigin
      if (d.credentials) headers['access-control-allow-credentials'] = 'true'
      if (c.expose !== undefined) headers['access-control-expose-headers'] = c.expose
    }
    // Without an Origin, the answer still varies by it unless every origin gets the same "*".
    if (d === undefined ? c.origin.kind !== 'any' || c.credentials !== false : d.varies) addVary(headers, 'Origin')
    if (c.secureContext) {
      headers['cross-origin-opener-policy'] = 'same-origin'
      headers['cross-origin-embedder-policy'] = 'require-corp'
    }
    return { ...res, headers }
  }

  return function corsPolicy (next: Handler): Handler {
    return async function applyCors (greq: GatewayRequest): Promise<GatewayResponse> {
      const origin = one(greq.headers.origin)
      if (origin === undefined) {
        // Not a CORS request: no CORS headers, but a shared cache must not serve this answer to one.
        return decorate(await next(greq), undefined)
      }
      const d = await decide(greq, origin)
      const requestMethod = one(greq.headers['access-control-request-method'])
      if (greq.method === 'OPTIONS' && requestMethod !== undefined) return preflight(greq, d, requestMethod)
      let res: GatewayResponse
      try {
        res = await next(greq)
      } catch (err) {
        if (d.allowOrigin === undefined) throw err
        // Answer the error here so the page can read it (a 401 without CORS headers is opaque to it).
        const e = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err })
        if (e.statusCode >= 500) greq.log.warn({ reqId: greq.id, code: e.code, service: e.service, err: e.cause ?? e }, e.message)
        else greq.log.info({ reqId: greq.id, code: e.code }, e.message)
        res = errorResponse(e, greq.id)
      }
      return decorate(res, d)
    }
  }
}

/**
 * A handler that answers CORS preflights for a route's method when the route
 * has no `OPTIONS` (or `ALL`) method of its own: the route's IP list, then
 * CORS. Undefined when no CORS settings apply. The front door calls it only
 * for a real preflight (OPTIONS with `Origin` and
 * `Access-Control-Request-Method`), which the CORS policy always answers.
 */
export function corsPreflight (target: RouteTarget, deps: PolicyDeps): Handler | undefined {
  const policy = cors(target, deps)
  if (policy === undefined) return undefined
  const ip = ipList(target, deps)
  const notAPreflight: Handler = async () => { throw new GatewayError('GW_ERR_METHOD_NOT_ALLOWED') }
  return compose(ip === undefined ? [policy] : [ip, policy], notAPreflight)
}
