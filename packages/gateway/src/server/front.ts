/**
 * The front door (fastify 5): one fastify route per configured path, covering
 * every method, so the gateway can answer 405 with `Allow` for a known path and
 * 404 for an unknown one. Bodies are not parsed here: the route decides whether
 * to stream, buffer or parse them.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import lightMyRequest, { type DispatchFunc, type InjectOptions, type Response as InjectResponse } from 'light-my-request'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import proxyAddr from 'proxy-addr'
import type { Logger } from 'pino'
import { GatewayError, errorBody, isGatewayError, type ErrorCode } from '@switchyard/protocol'
import type { CompiledRoute } from '../pipeline/route.js'
import type { DirectHandler, Handler } from '../policies/types.js'
import type { HttpServiceTransport } from '../transports/http-service.js'
import { sendDirect, streamDirect } from '../pipeline/stream.js'
import type { GatewayRequest, GatewayResponse, RequestBody } from '../pipeline/types.js'
import { errorResponse } from '../pipeline/respond.js'
import { requestId, traceparent } from './forwarding.js'
import type { TrustFn } from './trust.js'
import type { Metrics } from '../metrics.js'
import { accessLog, type AccessLog } from '../log.js'

/** What runs for one method of one path: a compiled route, streaming when it can. */
export interface Endpoint {
  route: CompiledRoute
  /** The route's policies around its terminal handler (stream or buffered run), composed at start. */
  handle: Handler
  /** The outermost policy's synchronous answer, tried before `handle` (`Policy.probe`: the cache's fresh in-process hit). */
  probe?: ((greq: GatewayRequest) => GatewayResponse | undefined) | undefined
  /** Answers a CORS preflight for this method when the path has no OPTIONS route of its own. */
  preflight?: Handler | undefined
  /**
   * `handle` as callbacks, when it is the passthrough fast path with no policy
   * around it or only policies that have a callback form (`composeDirect`):
   * the front door serves the route this way, without the handler's promise.
   */
  direct?: DirectHandler | undefined
}

/** The one service of a fast-path route, and its limits: what `directTerminal` is made with, and `Endpoint.direct`. */
export interface DirectTarget {
  service: HttpServiceTransport
  timeoutMs: number
  bodyLimit: number
}

export interface PathEntry {
  path: string
  methods: Map<string, Endpoint>
  allow: string
}

export interface FrontOptions {
  log: Logger
  metrics: Metrics
  trustProxy: boolean | string | string[] | number | undefined
  trust: TrustFn
  maxHeaderBytes: number
  requestTimeoutMs: number
  headersTimeoutMs: number
  keepAliveTimeoutMs: number
  https: { key: unknown, cert: unknown, ca?: unknown } | undefined
}

const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']
const ROUTE_METHOD_SET = new Set(ROUTE_METHODS)
/** The parameters of a path that has none. */
const NO_PARAMS: Readonly<Record<string, string | undefined>> = Object.freeze({})

const CLIENT_ERRORS: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'GW_ERR_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'GW_ERR_REQUEST_TIMEOUT'
}

function fastifyErrorCode (status: number): ErrorCode {
  switch (status) {
    case 404: return 'GW_ERR_ROUTE_NOT_FOUND'
    case 408: return 'GW_ERR_REQUEST_TIMEOUT'
    case 413: return 'GW_ERR_BODY_TOO_LARGE'
    case 431: return 'GW_ERR_HEADERS_TOO_LARGE'
    case 503: return 'GW_ERR_SHUTTING_DOWN'
    default: return status >= 400 && status < 500 ? 'GW_ERR_BAD_REQUEST' : 'GW_ERR_INTERNAL'
  }
}

/**
 * Writes a pipeline response on the raw response: the head with the request
 * id, then the bytes (with their Content-Length) or the stream (cut short if
 * it fails).
 */
function writeResponse (res: ServerResponse, gres: GatewayResponse, id: string, log: Logger, added?: Record<string, string>): void {
  if (gres.sent === true || res.destroyed) return
  if (res.headersSent) { res.destroy(); return } // an answer already started cannot be replaced: cut it short
  const headers = gres.headers
  if (added !== undefined) Object.assign(headers, added)
  headers['x-request-id'] = id
  const body = gres.body
  if (body === undefined) {
    res.writeHead(gres.status, headers)
    res.end()
  } else if (Buffer.isBuffer(body)) {
    if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(body.length)
    res.writeHead(gres.status, headers)
    res.end(body)
  } else {
    res.writeHead(gres.status, headers)
    // pipe() and two listeners rather than stream.pipeline(), which makes (and aborts) an
    // AbortController per call: ~15 µs a response on routes with policies.
    body.once('error', (err: Error) => {
      log.warn({ reqId: id, err }, 'response body failed; the response was cut short')
      res.destroy()
    })
    res.once('close', () => { if (!body.readableEnded) body.destroy() })
    body.pipe(res)
  }
}

/**
 * One log line and the metrics per answered request, written when the answer's
 * head goes out (for a streamed body: before its last byte).
 */
function completed (access: AccessLog, metrics: Metrics, route: string, id: string, req: IncomingMessage, status: number, start: number): void {
  const ms = performance.now() - start
  const method = req.method ?? 'GET'
  access(id, method, req.url ?? '/', status, ms)
  metrics.request(route, method, status, ms / 1000)
}

/** Fastify's own rule (handle-request.js): these methods never have a body to parse. */
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE'])

/** The front door: the HTTP(S) server, and fastify behind it. */
export interface Front {
  app: FastifyInstance
  /** In-process requests through the same dispatch as the socket (light-my-request). */
  inject: (opts: InjectOptions | string) => Promise<InjectResponse>
}

export function createFront (table: PathEntry[], opts: FrontOptions): Front {
  const { log, metrics, trust } = opts
  const access = accessLog(log)

  /**
   * Serves one request of a configured path, whichever way it arrived: the
   * endpoint for its method (or 405), the request read into a GatewayRequest,
   * then the composed handler (whose terminal may be the passthrough fast
   * path, which answers by itself and returns a `sent` answer). A route with
   * nothing around the fast path (`Endpoint.direct`) is served by callbacks
   * instead (`directSent`, `directFailed`), without a promise. Never rejects,
   * never throws: it answers its own failures.
   */
  function serve (entry: PathEntry, params: Record<string, string | undefined>, id: string, req: IncomingMessage, res: ServerResponse, payload: Readable | undefined, start: number): Promise<void> | undefined {
    try {
      const method = req.method ?? 'GET'
      let ep = entry.methods.get(method) ?? (method === 'HEAD' ? entry.methods.get('GET') : undefined) ?? (method !== 'TRACE' ? entry.methods.get('ALL') : undefined)
      let handle = ep?.handle
      if (ep === undefined && method === 'OPTIONS' && req.headers.origin !== undefined) {
        // A CORS preflight asks about another method: that method's route answers it.
        const asked = req.headers['access-control-request-method']
        if (typeof asked === 'string') {
          const m = asked.trim().toUpperCase()
          const t = entry.methods.get(m) ?? (m === 'HEAD' ? entry.methods.get('GET') : undefined) ?? entry.methods.get('ALL')
          if (t?.preflight !== undefined) { ep = t; handle = t.preflight }
        }
      }
      if (ep === undefined || handle === undefined) {
        writeResponse(res, errorResponse(new GatewayError('GW_ERR_METHOD_NOT_ALLOWED'), id, { allow: entry.allow }), id, log)
        completed(access, metrics, entry.path, id, req, 405, start)
        return undefined
      }
      const greq = new FrontRequest(id, req, res, entry.path, params, payload, trust, log, start)
      if (handle === ep.handle) {
        const direct = ep.direct
        if (direct !== undefined) {
          direct(greq, directSent, directFailed)
          return undefined
        }
        let hit: GatewayResponse | undefined
        try {
          hit = ep.probe?.(greq)
        } catch (err) {
          answerError(greq, err)
          return undefined
        }
        if (hit !== undefined) {
          answer(greq, hit)
          return undefined
        }
      }
      return run(handle, greq)
    } catch (err) {
      outside(err, res)
      return undefined
    }
  }

  /** The composed handler's answer, written and logged. Never rejects. */
  async function run (handle: Handler, greq: FrontRequest): Promise<void> {
    let gres: GatewayResponse
    try {
      gres = await handle(greq)
    } catch (err) {
      answerError(greq, err)
      return
    }
    answer(greq, gres)
  }

  /** Writes an answer (unless it went out already) and logs it. */
  function answer (greq: FrontRequest, gres: GatewayResponse): void {
    try {
      writeResponse(greq.response, gres, greq.id, log, greq.responseHeaders)
      completed(access, metrics, greq.route, greq.id, greq.request, gres.status, greq.start)
    } catch (err) {
      outside(err, greq.response)
    }
  }

  /** A thrown error as the answer (`failed`: logged with its reason), written and logged. */
  function answerError (greq: FrontRequest, err: unknown): void {
    let gres: GatewayResponse
    try {
      gres = failed(err, greq.id, log)
    } catch (e) {
      outside(e, greq.response)
      return
    }
    answer(greq, gres)
  }

  /** How a route with nothing around the fast path ends (`sendDirect`): made once, not per request. */
  const directSent = (gres: GatewayResponse, greq: GatewayRequest): void => { answer(greq as FrontRequest, gres) }
  const directFailed = (err: unknown, greq: GatewayRequest): void => { answerError(greq as FrontRequest, err) }

  /**
   * A failure outside the pipeline (writing the answer's head, the log line): a 500, or a cut
   * connection once the head is out. Caught where it happens rather than by a .catch() on every call.
   */
  function outside (err: unknown, res: ServerResponse): void {
    log.error({ err }, 'request failed outside the pipeline')
    if (!res.headersSent) res.writeHead(500).end()
    else res.destroy()
  }

  // Configured paths are looked up here, before fastify builds its request and
  // reply objects: the same router (find-my-way) with the same options, so the
  // match is the one fastify would make. What this does not handle (an unknown
  // path, a body to read, a bad URL) goes on to fastify.
  const router = FindMyWay({ ignoreDuplicateSlashes: false, ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 2048 })
  for (const entry of table) router.on(ROUTE_METHODS as HTTPMethod[], entry.path, () => {}, entry)
  // A path with no parameter or wildcard matches only itself, byte for byte (the options above:
  // case-sensitive, no slash folding, `;` not a delimiter), and find-my-way ranks it above any
  // parametric route. One Map lookup gives the router's answer for it without the router's walk
  // and its decoded-URL and query objects (~1.5k instructions a request under callgrind). A URL
  // with `%` or `#` before its query cannot equal such a path: it misses, and the router decodes it.
  const staticPaths = new Map<string, PathEntry>()
  for (const entry of table) if (!/[:*%?#]/.test(entry.path)) staticPaths.set(entry.path, entry)
  let toFastify: (req: IncomingMessage, res: ServerResponse) => void = () => { throw new Error('fastify has not built its server yet') }
  let closing = false

  function dispatch (req: IncomingMessage, res: ServerResponse): void {
    const start = performance.now()
    if (closing) {
      // Requests on kept-alive sockets while the gateway drains: refused, and the socket closed.
      const id = requestId(req.headers['x-request-id'])
      writeResponse(res, errorResponse(new GatewayError('GW_ERR_SHUTTING_DOWN'), id, { connection: 'close' }), id, log)
      completed(access, metrics, '(none)', id, req, 503, start)
      return
    }
    const method = req.method ?? 'GET'
    const h = req.headers
    if (BODYLESS.has(method) || (h['content-type'] === undefined && h['transfer-encoding'] === undefined && (h['content-length'] === undefined || h['content-length'] === '0'))) {
      const url = req.url ?? '/'
      const q = url.indexOf('?')
      const path = q === -1 ? url : url.slice(0, q)
      const known = ROUTE_METHOD_SET.has(method) ? staticPaths.get(path) : undefined
      if (known !== undefined) {
        // serve() never rejects: it answers its own failures.
        serve(known, NO_PARAMS, requestId(h['x-request-id']), req, res, undefined, start)
        return
      }
      const found = router.find(method as HTTPMethod, url)
      if (found !== null) {
        serve(found.store as PathEntry, found.params, requestId(h['x-request-id']), req, res, undefined, start)
        return
      }
    }
    toFastify(req, res)
  }

  const app = Fastify({
    // fastify would make a pino child logger per request; the gateway logs with its own logger.
    logger: false,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: (address: string, hop: number) => trust(address, hop),
    bodyLimit: Number.MAX_SAFE_INTEGER, // limits are enforced per route (413 with the catalogue code)
    exposeHeadRoutes: false,
    return503OnClosing: true,
    requestTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    genReqId: (req) => requestId(req.headers['x-request-id']),
    routerOptions: { maxParamLength: 2048, ignoreDuplicateSlashes: false },
    serverFactory: (handler) => {
      toFastify = handler
      const server = opts.https !== undefined
        ? createHttpsServer({ ...opts.https, maxHeaderSize: opts.maxHeaderBytes } as HttpsServerOptions, dispatch)
        : createHttpServer({ maxHeaderSize: opts.maxHeaderBytes }, dispatch)
      server.keepAliveTimeout = opts.keepAliveTimeoutMs
      server.requestTimeout = opts.requestTimeoutMs
      server.headersTimeout = opts.headersTimeoutMs
      return server
    },
    clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      const e = new GatewayError(CLIENT_ERRORS[err.code ?? ''] ?? 'GW_ERR_BAD_REQUEST')
      log.info({ code: e.code, reason: err.code }, 'client error')
      const body = JSON.stringify(errorBody(e, ''))
      if (socket.writable) socket.write(`HTTP/1.1 ${e.statusCode} ${e.message}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
      socket.destroy()
    }
  }) as unknown as FastifyInstance
  app.addHook('preClose', (done) => { closing = true; done() })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })

  const refuse = (request: FastifyRequest, reply: FastifyReply, e: GatewayError, route: string): void => {
    reply.hijack()
    writeResponse(reply.raw, errorResponse(e, request.id), request.id, log)
    completed(access, metrics, route, request.id, request.raw, e.statusCode, performance.now() - reply.elapsedTime)
  }
  app.setNotFoundHandler((request, reply) => { refuse(request, reply, new GatewayError('GW_ERR_ROUTE_NOT_FOUND'), '(none)') })
  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, request, reply) => {
    let e: GatewayError
    if (isGatewayError(err)) e = err
    else {
      const status = typeof err.statusCode === 'number' ? err.statusCode : 500
      e = new GatewayError(fastifyErrorCode(status), { statusCode: status >= 400 && status < 600 ? status : 500, cause: err })
    }
    if (e.statusCode >= 500) log.error({ reqId: request.id, err }, 'request failed')
    else log.info({ reqId: request.id, code: e.code, reason: err.message }, 'request refused')
    refuse(request, reply, e, request.routeOptions.url ?? '(none)')
  })
  for (const entry of table) {
    app.route({
      method: ROUTE_METHODS,
      url: entry.path,
      // Reached for requests with a body (fastify hands over the raw stream) and whatever the pre-router passed on.
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        reply.hijack()
        const payload = request.body === undefined || request.body === null ? undefined : request.body as Readable
        await serve(entry, request.params as Record<string, string>, request.id, request.raw, reply.raw, payload, performance.now() - reply.elapsedTime)
      }
    })
  }
  return {
    app,
    inject: async (opts) => {
      await app.ready()
      return await lightMyRequest(dispatch as DispatchFunc, opts)
    }
  }
}

/**
 * The passthrough fast path as a route's terminal handler: undici writes the
 * service's answer straight into the client's response (pipeline/stream.ts,
 * `streamDirect`), and the handler resolves with a `sent` answer. Only
 * transparent policies may wrap it (policies/types.ts), since nobody can
 * change an answer that is already out.
 */
export function directTerminal ({ service, timeoutMs, bodyLimit }: DirectTarget): Handler {
  // Not async: streamDirect's promise is the handler's (one promise a request, not two).
  return function passthrough (greq: GatewayRequest): Promise<GatewayResponse> {
    return streamDirect(service, greq, timeoutMs, bodyLimit, (greq as FrontRequest).response)
  }
}

/** The passthrough fast path as callbacks (`DirectHandler`): `directTerminal` without its promise. */
export function directHandler ({ service, timeoutMs, bodyLimit }: DirectTarget): DirectHandler {
  return function passthroughDirect (greq, done, fail) {
    sendDirect(service, greq, timeoutMs, bodyLimit, (greq as FrontRequest).response, done, fail)
  }
}

/** A thrown error as the client sees it, logged once with its reason. */
function failed (err: unknown, id: string, log: Logger): GatewayResponse {
  const e = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err })
  if (e.statusCode >= 500) log.warn({ reqId: id, code: e.code, service: e.service, err: e.cause ?? e }, e.message)
  else log.info({ reqId: id, code: e.code }, e.message)
  return errorResponse(e, id)
}

/**
 * The client's request as the pipeline sees it. A class rather than an object
 * literal: one shape for every request, and the abort signal built only when
 * something asks for it (the streaming path never does).
 */
class FrontRequest implements GatewayRequest {
  readonly id: string
  readonly method: string
  readonly route: string
  readonly path: string
  readonly rawQuery: string
  readonly params: Readonly<Record<string, string>>
  readonly headers: IncomingMessage['headers']
  readonly remoteAddress: string
  readonly remotePort: number
  readonly forwardedFor: string
  readonly forwardedProto: string
  readonly forwardedHost: string | undefined
  body: RequestBody
  claims?: Record<string, unknown> | undefined
  responseHeaders?: Record<string, string> | undefined
  readonly log: Logger
  /** The client's response, for the fast path (directTerminal). */
  readonly response: ServerResponse
  /** The client's request, and when the front door took it (`performance.now()`), for its log line. */
  readonly request: IncomingMessage
  readonly start: number
  #signal: AbortSignal | undefined
  #traceparent: string | undefined

  constructor (id: string, req: IncomingMessage, res: ServerResponse, route: string, params: Record<string, string | undefined>, payload: Readable | undefined, trust: TrustFn, log: Logger, start: number) {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const socket = req.socket
    const peer = socket.remoteAddress ?? ''
    const headers = req.headers
    const trusted = trust(peer, 0)
    const xff = headers['x-forwarded-for']
    this.id = id
    this.method = req.method ?? 'GET'
    this.route = route
    this.path = q === -1 ? url : url.slice(0, q)
    this.rawQuery = q === -1 ? '' : url.slice(q + 1)
    this.params = params as Record<string, string>
    this.headers = headers
    this.remotePort = socket.remotePort ?? 0
    this.forwardedFor = trusted && xff !== undefined ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${peer}` : peer
    if (payload === undefined) this.body = NO_BODY
    else {
      const cl = headers['content-length']
      this.body = { kind: 'stream', stream: payload, length: cl === undefined ? undefined : Number(cl) }
    }
    this.claims = undefined
    this.responseHeaders = undefined
    this.log = log
    this.response = res
    this.request = req
    this.start = start
    this.#signal = undefined
    this.#traceparent = undefined
    if (trusted) {
      // The answers fastify's request.ip/.protocol/.host give with a trusted peer (proxy-addr; the last entry).
      const chain = proxyAddr.all(req, trust)
      this.remoteAddress = chain[chain.length - 1] ?? peer
      const proto = headers['x-forwarded-proto']
      this.forwardedProto = typeof proto === 'string' && proto !== '' ? lastEntry(proto) : (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'
      const host = headers['x-forwarded-host']
      this.forwardedHost = typeof host === 'string' && host !== '' ? lastEntry(host) : headers.host ?? ''
    } else {
      this.remoteAddress = peer
      this.forwardedProto = (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'
      this.forwardedHost = headers.host
    }
  }

  /** Made when a service is called (a cache hit or a refusal never needs one). */
  get traceparent (): string {
    this.#traceparent ??= traceparent(this.headers.traceparent)
    return this.#traceparent
  }

  /** Aborted when the client goes away before its answer is complete. */
  get signal (): AbortSignal {
    if (this.#signal !== undefined) return this.#signal
    const res = this.response
    const controller = new AbortController()
    if (res.destroyed && !res.writableFinished) controller.abort()
    else res.once('close', () => { if (!res.writableFinished) controller.abort() })
    this.#signal = controller.signal
    return this.#signal
  }
}

const NO_BODY: RequestBody = Object.freeze({ kind: 'none' })

/** The last value of a comma-separated header (the one the nearest proxy added). */
function lastEntry (value: string): string {
  const i = value.lastIndexOf(',')
  return i === -1 ? value.trim() : value.slice(i + 1).trim()
}
