/**
 * The streaming path (PRODUCT §3.1): a route with one HTTP service and no
 * transform pipes the client's body to the service and the service's body to
 * the client, in constant memory, with back-pressure both ways.
 */
import type { ServerResponse } from 'node:http'
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream'
import type { Dispatcher } from 'undici'
import { GatewayError } from '@switchyard/protocol'
import { buildPath, callTarget, IDEMPOTENT, PRECISE_TIMER_BELOW_MS, RETRY_STATUS, upstreamError } from '../transports/http.js'
import type { HttpServiceTransport } from '../transports/http-service.js'
import { downstreamResponseHeaders, upstreamRequestHeaders, type HeaderMap } from './headers.js'
import type { GatewayRequest, GatewayResponse } from './types.js'
import { addForwardingHeaders } from '../server/forwarding.js'

/** Counts bytes and fails past the limit (bodies without a Content-Length). */
class ByteLimit extends Transform {
  #seen = 0
  readonly #limit: number
  constructor (limit: number) { super(); this.#limit = limit }
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#limit) cb(new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: this.#limit } }))
    else cb(null, chunk)
  }
}

/** What both streaming calls send: the client's headers with the forwarding ones, the body, and how many retries it allows. */
interface Outgoing { headers: HeaderMap, body: Readable | Buffer | undefined, retries: number }

function outgoing (service: HttpServiceTransport, greq: GatewayRequest, bodyLimit: number): Outgoing {
  const headers = upstreamRequestHeaders(greq.headers, true)
  addForwardingHeaders(headers, greq)
  const body = requestBody(greq, bodyLimit)
  // Only an idempotent request without a body can be replayed.
  const retries = body === undefined && IDEMPOTENT.has(greq.method) ? service.config.retries ?? 0 : 0
  return { headers, body, retries }
}

export async function streamService (service: HttpServiceTransport, greq: GatewayRequest, timeoutMs: number, bodyLimit: number): Promise<GatewayResponse> {
  const { headers, body, retries } = outgoing(service, greq, bodyLimit)
  for (let attempt = 0; ; attempt++) {
    const target = service.targets.pick()
    try {
      const res = await callTarget(target.pool, {
        method: greq.method,
        path: buildPath(target, greq.params, greq.rawQuery),
        headers,
        body,
        timeoutMs,
        signal: undefined // a client that leaves destroys the piped response, which ends the upstream body
      }, service.name)
      if (attempt < retries && RETRY_STATUS.has(res.statusCode)) {
        service.targets.failed(target)
        await res.body.dump()
        continue
      }
      service.targets.succeeded(target)
      return { status: res.statusCode, headers: downstreamResponseHeaders(res.headers, false), body: res.body }
    } catch (err) {
      const e = upstreamError(err, service.name, false)
      if (e.code === 'GW_ERR_UPSTREAM_UNREACHABLE') service.targets.failed(target)
      if (attempt < retries && e.retryable) continue
      throw e
    }
  }
}

/** What the fast path resolves with: the answer went out already (the front door leaves it alone). */
const SENT_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>

/**
 * The passthrough fast path, for a streaming route with no policy that needs
 * to see the response: undici writes the service's body straight into the
 * client's response (`pool.stream`), with no intermediate stream and no
 * framework work on the way out. Resolves with a `sent` answer carrying the
 * status; rejects with a GatewayError only while nothing has been written yet.
 * Callbacks rather than async/await: one promise a request instead of three;
 * and no named closure per request (tsx's `keepNames` gives each one an
 * `Object.defineProperty` call).
 */
export function streamDirect (service: HttpServiceTransport, greq: GatewayRequest, timeoutMs: number, bodyLimit: number, res: ServerResponse): Promise<GatewayResponse> {
  return new Promise((resolve, reject) => {
    let out: Outgoing
    try {
      out = outgoing(service, greq, bodyLimit)
    } catch (err) {
      reject(err)
      return
    }
    attemptDirect({ service, greq, res, out, timeoutMs, resolve, reject }, 0)
  })
}

/** One fast-path call: what each attempt needs (a plain object, not a closure per request). */
interface DirectCall {
  readonly service: HttpServiceTransport
  readonly greq: GatewayRequest
  readonly res: ServerResponse
  readonly out: Outgoing
  readonly timeoutMs: number
  readonly resolve: (r: GatewayResponse) => void
  readonly reject: (err: unknown) => void
}

function attemptDirect (c: DirectCall, n: number): void {
  const { service, greq, res, timeoutMs } = c
  const target = service.targets.pick()
  const precise = timeoutMs < PRECISE_TIMER_BELOW_MS
  let status = 0
  let retrying = false
  let timer: NodeJS.Timeout | undefined
  let timedOut = false
  const ac = precise ? new AbortController() : undefined
  if (ac !== undefined) timer = setTimeout(() => { timedOut = true; ac.abort() }, timeoutMs)
  target.pool.stream({
    method: greq.method as Dispatcher.HttpMethod,
    path: buildPath(target, greq.params, greq.rawQuery),
    headers: c.out.headers,
    body: c.out.body ?? null,
    signal: ac?.signal,
    headersTimeout: precise ? 0 : timeoutMs,
    bodyTimeout: timeoutMs
  }, ({ statusCode, headers: upstream }) => {
    clearTimeout(timer)
    if (n < c.out.retries && RETRY_STATUS.has(statusCode)) {
      // Another attempt may answer better: this answer is read and dropped, never sent.
      retrying = true
      return new Writable({ write (_chunk, _enc, cb) { cb() } })
    }
    status = statusCode
    const out = downstreamResponseHeaders(upstream as Record<string, string | string[] | undefined>, false)
    if (greq.responseHeaders !== undefined) Object.assign(out, greq.responseHeaders)
    out['x-request-id'] = greq.id
    res.writeHead(statusCode, out)
    return res
  }, (err) => {
    clearTimeout(timer)
    if (retrying) {
      // The retry was decided on the status; whether the dropped body drained or not, it goes ahead
      // (and the target is counted as failed once, not again below).
      service.targets.failed(target)
      attemptDirect(c, n + 1)
      return
    }
    if (err === null) {
      service.targets.succeeded(target)
      c.resolve({ status, headers: SENT_HEADERS, body: undefined, sent: true })
      return
    }
    if (status !== 0) {
      // The head is out: all that is left is to cut the response short.
      res.destroy()
      c.resolve({ status, headers: SENT_HEADERS, body: undefined, sent: true })
      return
    }
    const e = upstreamError(err, service.name, timedOut)
    if (e.code === 'GW_ERR_UPSTREAM_UNREACHABLE') service.targets.failed(target)
    if (n < c.out.retries && e.retryable) attemptDirect(c, n + 1)
    else c.reject(e)
  })
}

function requestBody (greq: GatewayRequest, bodyLimit: number): Readable | Buffer | undefined {
  if (greq.body.kind === 'buffer') return greq.body.bytes // a policy read it already
  if (greq.body.kind !== 'stream') return undefined
  if (greq.body.length !== undefined) {
    if (greq.body.length > bodyLimit) throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: bodyLimit } })
    return greq.body.stream // Node enforces the declared length.
  }
  const limited = new ByteLimit(bodyLimit)
  greq.body.stream.on('error', (err: Error) => limited.destroy(err))
  return greq.body.stream.pipe(limited)
}
