/**
 * The buffered HTTP service call (fan-out, merge, hooks, transforms). The
 * single-service streaming path lives in pipeline/stream.ts.
 */
import { GatewayError, type HttpRequest } from '@switchyard/protocol'
import type { Logger } from 'pino'
import type { HttpServiceConfig } from '../config/schema.js'
import { parseResponseBody, serializeBody, serializeQuery } from '../pipeline/body.js'
import { downstreamResponseHeaders, upstreamRequestHeaders, type HeaderMap } from '../pipeline/headers.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import type { GatewayRequest } from '../pipeline/types.js'
import { buildPath, callTarget, IDEMPOTENT, RETRY_STATUS, encodeSegment, makeTargets, requestUrl, TargetSet, upstreamError, type PoolRegistry, type Target } from './http.js'
import type { ServiceCall, ServiceTransport } from './types.js'
import { addForwardingHeaders } from '../server/forwarding.js'

export class HttpServiceTransport implements ServiceTransport {
  readonly name: string
  readonly config: HttpServiceConfig
  readonly targets: TargetSet
  readonly #pools: PoolRegistry
  readonly #log: Logger
  readonly #routeParams: ReadonlySet<string>

  constructor (name: string, config: HttpServiceConfig, routeParams: ReadonlySet<string>, pools: PoolRegistry, log: Logger) {
    this.name = name
    this.config = config
    this.#pools = pools
    this.#log = log
    this.#routeParams = routeParams
    this.targets = new TargetSet(makeTargets(config.url, routeParams, pools))
  }

  async hookView (view: HttpRequest, greq: GatewayRequest): Promise<HttpRequest> {
    const t = await this.#chooseTarget()
    return { ...view, path: t.origin + buildPath(t, view.params ?? greq.params, '') }
  }

  /** Round-robin, or Prism's `getUrl(urls)` choosing among the urls (a random pick of its answer). */
  async #chooseTarget (): Promise<Target> {
    const getUrl = this.config.getUrl
    if (getUrl === undefined) return this.targets.pick()
    const chosen = await getUrl(this.config.url)
    const list = Array.isArray(chosen) ? chosen : [chosen]
    const url = list[Math.floor(Math.random() * list.length)]
    const found = this.targets.targets.find(t => t.url === url)
    if (found !== undefined) return found
    if (typeof url !== 'string') throw new GatewayError('GW_ERR_INTERNAL', { service: this.name, message: 'getUrl returned no URL' })
    return makeTargets(url, this.#routeParams, this.#pools)[0]!
  }

  async invoke (call: ServiceCall): Promise<ServiceResponse> {
    const { greq, view, baseView } = call
    const method = upstreamMethod(view?.method ?? greq.method, call.parse)
    let target: Target | undefined
    let origin: string
    let path: string
    const clientQuery = view !== undefined && baseView !== undefined && view.query !== baseView.query ? serializeQuery(view.query ?? {}) : greq.rawQuery
    if (view !== undefined && /^https?:\/\//.test(view.path)) {
      // A hook view: the path is the full target URL, possibly rewritten by the hook.
      const u = new URL(view.path)
      origin = u.origin
      const q = u.search.slice(1)
      const query = q === '' ? clientQuery : clientQuery === '' ? q : `${q}&${clientQuery}`
      path = query === '' ? u.pathname : `${u.pathname}?${query}`
    } else {
      target = await this.#chooseTarget()
      origin = target.origin
      path = buildPath(target, view?.params ?? greq.params, clientQuery)
    }
    const headers = upstreamRequestHeaders(view?.headers as GatewayRequest['headers'] ?? greq.headers, false)
    addForwardingHeaders(headers, greq)
    if (call.parse) headers['accept-encoding'] = 'identity'
    let body: Buffer | undefined
    if (method !== 'GET' && method !== 'HEAD') {
      if (view !== undefined && baseView !== undefined && view.body !== baseView.body) {
        const ct = this.config.contentEncoding ?? this.config.contentType ?? headerOne(view.headers?.['content-type']) ?? headerOne(greq.headers['content-type'])
        const s = serializeBody(view.body, ct)
        if (s !== undefined) { body = s.bytes; headers['content-type'] = s.contentType } else delete headers['content-type']
      } else if (greq.body.kind === 'buffer') {
        body = greq.body.bytes
      }
      if (body !== undefined) headers['content-length'] = String(body.length)
    }
    const retries = IDEMPOTENT.has(method) ? this.config.retries ?? 0 : 0
    for (let attempt = 0; ; attempt++) {
      const t = target ?? undefined
      try {
        const res = await callTarget(t?.pool ?? this.#pools.get(origin), { method, path, headers, body, timeoutMs: call.timeoutMs, signal: undefined }, this.name)
        if (attempt < retries && RETRY_STATUS.has(res.statusCode)) {
          await res.body.dump()
          if (t !== undefined) this.targets.failed(t)
          target = target === undefined ? undefined : this.targets.pick()
          continue
        }
        const bytes = Buffer.from(await res.body.arrayBuffer())
        if (t !== undefined) this.targets.succeeded(t)
        const rh = downstreamResponseHeaders(res.headers, true)
        return {
          status: res.statusCode,
          headers: rh,
          body: call.parse ? parseResponseBody(bytes, rh['content-type']) : bytes.length === 0 ? undefined : bytes,
          raw: !call.parse
        }
      } catch (err) {
        const e = upstreamError(err, this.name, false) // callTarget already mapped it
        if (t !== undefined && e.code === 'GW_ERR_UPSTREAM_UNREACHABLE') this.targets.failed(t)
        if (attempt < retries && e.retryable) {
          target = target === undefined ? undefined : this.targets.pick()
          if (target !== undefined) path = buildPath(target, view?.params ?? greq.params, clientQuery)
          continue
        }
        throw e
      }
    }
  }

  async rollback (greq: GatewayRequest, view: HttpRequest): Promise<void> {
    const hook = this.config.rollback
    if (hook === undefined) return
    let req = hook(view) ?? undefined
    if (req === undefined) return
    if (this.config.onRollbackRequest !== undefined) {
      const r = await this.config.onRollbackRequest(req)
      if (r?.handled === true) return
      if (r?.request !== undefined) req = r.request
    }
    // `:param` in the rollback URL comes from the original request's params (Prism).
    const url = req.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (m, name: string) => {
      const v = (view.params ?? {})[name]
      return v === undefined ? m : encodeSegment(v)
    })
    const headers: HeaderMap = upstreamRequestHeaders((req.headers ?? {}) as GatewayRequest['headers'], false)
    addForwardingHeaders(headers, greq)
    const s = serializeBody(req.body, this.config.rollbackRequestContentEncoding ?? this.config.rollbackRequestContentType ?? headerOne(req.headers?.['content-type']))
    if (s !== undefined) { headers['content-type'] = s.contentType; headers['content-length'] = String(s.bytes.length) }
    const status = await requestUrl(this.#pools, url, { method: req.method ?? 'POST', headers, body: s?.bytes, timeoutMs: this.config.timeout ?? 30_000 })
    if (status >= 400) throw new Error(`rollback answered ${status}`)
    this.#log.debug({ reqId: greq.id, service: this.name }, 'rollback sent')
  }
}

function headerOne (v: unknown): string | undefined {
  return Array.isArray(v) ? (v[0] as string | undefined) : typeof v === 'string' ? v : undefined
}

/** HEAD is served from GET; when the gateway needs the body (merge), it asks for GET. */
function upstreamMethod (method: string, parse: boolean): string {
  return method === 'HEAD' && parse ? 'GET' : method
}
