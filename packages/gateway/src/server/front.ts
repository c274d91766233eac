/**
 * The front door (fastify 5): one fastify route per configured path, covering
 * every method, so the gateway can answer 405 with `Allow` for a known path and
 * 404 for an unknown one. Bodies are not parsed here: the route decides whether
 * to stream, buffer or parse them.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { GatewayError, errorBody, isGatewayError, type ErrorCode } from '@switchyard/protocol'
import type { CompiledRoute } from '../pipeline/route.js'
import type { Handler } from '../policies/types.js'
import type { HttpServiceTransport } from '../transports/http-service.js'
import { streamDirect } from '../pipeline/stream.js'
import type { GatewayRequest, GatewayResponse, RequestBody } from '../pipeline/types.js'
import { errorResponse } from '../pipeline/respond.js'
import { requestId, traceparent } from './forwarding.js'
import type { TrustFn } from './trust.js'
import type { Metrics } from '../metrics.js'

/** What runs for one method of one path: a compiled route, streaming when it can. */
export interface Endpoint {
  route: CompiledRoute
  /** The route's policies around its terminal handler (stream or buffered run), composed at start. */
  handle: Handler
  /** Answers a CORS preflight for this method when the path has no OPTIONS route of its own. */
  preflight?: Handler | undefined
  /** Set when the route streams and no policy needs to see its response: the passthrough fast path. */
  direct?: { service: HttpServiceTransport, timeoutMs: number, bodyLimit: number } | undefined
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

export function send (reply: FastifyReply, res: GatewayResponse, id: string): FastifyReply {
  reply.code(res.status)
  reply.headers(res.headers)
  reply.header('x-request-id', id)
  return reply.send(res.body)
}

/**
 * One log line and the metrics per answered request, written when the answer's
 * head goes out (for a streamed body: before its last byte). Done here rather
 * than in a fastify onResponse hook, which costs every request a hook run.
 */
function completed (log: Logger, metrics: Metrics, route: string, request: FastifyRequest, reply: FastifyReply, status: number): void {
  const ms = reply.elapsedTime
  log.info({ reqId: request.id, method: request.method, url: request.url, status, ms }, 'request completed')
  metrics.request(route, request.method, status, ms / 1000)
}

export function createFront (table: PathEntry[], opts: FrontOptions): FastifyInstance {
  const { log, metrics, trust } = opts
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
    ...(opts.https !== undefined ? { https: { ...opts.https, maxHeaderSize: opts.maxHeaderBytes } as { key: string, cert: string } } : { http: { maxHeaderSize: opts.maxHeaderBytes } }),
    clientErrorHandler (err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      const e = new GatewayError(CLIENT_ERRORS[err.code ?? ''] ?? 'GW_ERR_BAD_REQUEST')
      log.info({ code: e.code, reason: err.code }, 'client error')
      const body = JSON.stringify(errorBody(e, ''))
      if (socket.writable) socket.write(`HTTP/1.1 ${e.statusCode} ${e.message}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
      socket.destroy()
    }
  }) as unknown as FastifyInstance
  app.server.headersTimeout = opts.headersTimeoutMs
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })

  app.setNotFoundHandler((request, reply) => {
    send(reply, errorResponse(new GatewayError('GW_ERR_ROUTE_NOT_FOUND'), request.id), request.id)
    completed(log, metrics, '(none)', request, reply, 404)
  })
  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, request, reply) => {
    let e: GatewayError
    if (isGatewayError(err)) e = err
    else {
      const status = typeof err.statusCode === 'number' ? err.statusCode : 500
      e = new GatewayError(fastifyErrorCode(status), { statusCode: status >= 400 && status < 600 ? status : 500, cause: err })
    }
    if (e.statusCode >= 500) log.error({ reqId: request.id, err }, 'request failed')
    else log.info({ reqId: request.id, code: e.code, reason: err.message }, 'request refused')
    send(reply, errorResponse(e, request.id), request.id)
    completed(log, metrics, request.routeOptions.url ?? '(none)', request, reply, e.statusCode)
  })
  for (const entry of table) {
    app.route({
      method: ROUTE_METHODS,
      url: entry.path,
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const method = request.method
        let ep = entry.methods.get(method) ?? (method === 'HEAD' ? entry.methods.get('GET') : undefined) ?? (method !== 'TRACE' ? entry.methods.get('ALL') : undefined)
        let handle = ep?.handle
        if (ep === undefined && method === 'OPTIONS' && request.headers.origin !== undefined) {
          // A CORS preflight asks about another method: that method's route answers it.
          const asked = request.headers['access-control-request-method']
          if (typeof asked === 'string') {
            const m = asked.trim().toUpperCase()
            const t = entry.methods.get(m) ?? (m === 'HEAD' ? entry.methods.get('GET') : undefined) ?? entry.methods.get('ALL')
            if (t?.preflight !== undefined) { ep = t; handle = t.preflight }
          }
        }
        if (ep === undefined || handle === undefined) {
          send(reply, errorResponse(new GatewayError('GW_ERR_METHOD_NOT_ALLOWED'), request.id, { allow: entry.allow }), request.id)
          completed(log, metrics, entry.path, request, reply, 405)
          return reply
        }
        const greq = gatewayRequest(request, reply, entry.path, trust, log)
        if (ep.direct !== undefined && handle === ep.handle) {
          reply.hijack()
          let status: number
          try {
            status = await streamDirect(ep.direct.service, greq, ep.direct.timeoutMs, ep.direct.bodyLimit, reply.raw)
          } catch (err) {
            const e = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err })
            if (e.statusCode >= 500) log.warn({ reqId: greq.id, code: e.code, service: e.service, err: e.cause ?? e }, e.message)
            else log.info({ reqId: greq.id, code: e.code }, e.message)
            const r = errorResponse(e, greq.id)
            status = r.status
            if (!reply.raw.headersSent && !reply.raw.destroyed) {
              r.headers['x-request-id'] = greq.id
              reply.raw.writeHead(r.status, r.headers)
              reply.raw.end(r.body)
            }
          }
          completed(log, metrics, entry.path, request, reply, status)
          return
        }
        let res: GatewayResponse
        try {
          res = await handle(greq)
        } catch (err) {
          const e = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err })
          if (e.statusCode >= 500) log.warn({ reqId: greq.id, code: e.code, service: e.service, err: e.cause ?? e }, e.message)
          else log.info({ reqId: greq.id, code: e.code }, e.message)
          res = errorResponse(e, greq.id)
        }
        send(reply, res, greq.id)
        completed(log, metrics, entry.path, request, reply, res.status)
        return reply
      }
    })
  }
  return app
}

function gatewayRequest (request: FastifyRequest, reply: FastifyReply, route: string, trust: TrustFn, log: Logger): GatewayRequest {
  const raw = request.raw
  const url = raw.url ?? '/'
  const q = url.indexOf('?')
  const peer = raw.socket.remoteAddress ?? ''
  const xff = request.headers['x-forwarded-for']
  const trusted = trust(peer, 0)
  const forwardedFor = trusted && xff !== undefined ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${peer}` : peer
  let body: RequestBody = { kind: 'none' }
  if (request.body !== undefined && request.body !== null) {
    const cl = request.headers['content-length']
    body = { kind: 'stream', stream: request.body as Readable, length: cl === undefined ? undefined : Number(cl) }
  }
  return {
    id: request.id,
    traceparent: traceparent(request.headers.traceparent),
    method: request.method,
    route,
    path: q === -1 ? url : url.slice(0, q),
    rawQuery: q === -1 ? '' : url.slice(q + 1),
    params: request.params as Record<string, string>,
    headers: request.headers,
    remoteAddress: trusted ? request.ip : peer,
    remotePort: raw.socket.remotePort ?? 0,
    forwardedFor,
    forwardedProto: trusted ? request.protocol : (raw.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http',
    forwardedHost: trusted ? request.host : request.headers.host,
    body,
    log,
    // Created on first use: most requests (the streaming path) never need one.
    get signal (): AbortSignal {
      const controller = new AbortController()
      if (reply.raw.destroyed && !reply.raw.writableFinished) controller.abort()
      else reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort() })
      Object.defineProperty(this, 'signal', { value: controller.signal })
      return controller.signal
    }
  }
}
