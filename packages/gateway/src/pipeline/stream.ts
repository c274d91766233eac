/**
 * The streaming path (PRODUCT §3.1): a route with one HTTP service and no
 * transform pipes the client's body to the service and the service's body to
 * the client, in constant memory, with back-pressure both ways.
 */
import type { ServerResponse } from 'node:http'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { Dispatcher } from 'undici'
import { GatewayError } from '@switchyard/protocol'
import { buildPath, callTarget, IDEMPOTENT, PRECISE_TIMER_BELOW_MS, RETRY_STATUS, upstreamError, type Target } from '../transports/http.js'
import type { HttpServiceTransport } from '../transports/http-service.js'
import { downstreamRawHeaders, downstreamResponseHeaders, upstreamRequestHeaderList } from './headers.js'
import type { GatewayRequest, GatewayResponse } from './types.js'
import { appendForwardingHeaders } from '../server/forwarding.js'

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

/** What both streaming calls send: the client's headers with the forwarding ones (a flat list), the body, and how many retries it allows. */
interface Outgoing { headers: string[], body: Readable | Buffer | undefined, retries: number }

function outgoing (service: HttpServiceTransport, greq: GatewayRequest, bodyLimit: number): Outgoing {
  const headers = upstreamRequestHeaderList(greq.headers, true)
  appendForwardingHeaders(headers, greq)
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
 * to see the response: the service's answer is written straight into the
 * client's response from undici's dispatch callbacks (`DirectCall`), with no
 * intermediate stream and no framework work on the way out. Resolves with a
 * `sent` answer carrying the status; rejects with a GatewayError only while
 * nothing has been written yet.
 */
export function streamDirect (service: HttpServiceTransport, greq: GatewayRequest, timeoutMs: number, bodyLimit: number, res: ServerResponse): Promise<GatewayResponse> {
  return new Promise((resolve, reject) => { sendDirect(service, greq, timeoutMs, bodyLimit, res, resolve, reject) })
}

/** How a fast-path call ends: `sent` once the answer went out (or was cut short after its head), `failed` while nothing was written. */
export type DirectSent = (r: GatewayResponse, greq: GatewayRequest) => void
export type DirectFailed = (err: unknown, greq: GatewayRequest) => void

/**
 * `streamDirect` without a promise: the call ends in `sent` or `failed`, each
 * handed the request. For a route with no policy around the fast path, the
 * front door passes two functions of its own (made once, at start), so a
 * request costs no promise, executor or resolving functions.
 */
export function sendDirect (service: HttpServiceTransport, greq: GatewayRequest, timeoutMs: number, bodyLimit: number, res: ServerResponse, sent: DirectSent, failed: DirectFailed): void {
  try {
    new DirectCall(service, greq, res, outgoing(service, greq, bodyLimit), timeoutMs, sent, failed).send()
  } catch (err) {
    failed(err, greq) // before anything was sent: a body over the limit, say
  }
}

/** Fires a call's precise timer (a module function and an argument: no closure per request). */
function timeUp (c: DirectCall): void { c.timeUp() }

/**
 * One fast-path request to a service, as undici's dispatch handler: the
 * callback interface (`onConnect`, `onHeaders`, `onData`, `onComplete`,
 * `onError`) that undici's own `pool.stream`/`pool.request` are built on and
 * that its core calls directly. Under callgrind, a bare proxy built on
 * `pool.stream` ran ~21% more instructions per request than the same proxy on
 * this interface (docs/performance.md): `pool.stream` adds an AsyncResource
 * per request, `stream.finished()` on the response (a handful of listeners),
 * and the head parsed into an object that a proxy then copies.
 * Here the raw head goes to `writeHead` in one pass, body chunks go to
 * `res.write` with back-pressure (`false` pauses undici until 'drain'), and a
 * client that leaves aborts the call at once, before or after the head.
 *
 * Retries (`retries`, on 502/503/504 or a retryable error, never once the head
 * is out) reuse the object: `send()` starts the next attempt.
 */
class DirectCall implements Dispatcher.DispatchHandler {
  readonly #service: HttpServiceTransport
  readonly #greq: GatewayRequest
  readonly #res: ServerResponse
  readonly #out: Outgoing
  readonly #timeoutMs: number
  readonly #done: DirectSent
  readonly #fail: DirectFailed
  #attempt = -1
  #target: Target | undefined = undefined
  /** The status sent to the client; 0 while the head is not out. */
  #status = 0
  /** This attempt's answer is a retryable status: its body is read and dropped. */
  #retrying = false
  #abort: ((err?: Error) => void) | undefined = undefined
  /** Why to abort, when that was decided before undici handed over `abort`. */
  #reason: Error | undefined = undefined
  #timer: NodeJS.Timeout | undefined = undefined
  #timedOut = false
  #clientLeft = false
  #resume: (() => void) | undefined = undefined

  constructor (service: HttpServiceTransport, greq: GatewayRequest, res: ServerResponse, out: Outgoing, timeoutMs: number, done: DirectSent, fail: DirectFailed) {
    this.#service = service
    this.#greq = greq
    this.#res = res
    this.#out = out
    this.#timeoutMs = timeoutMs
    this.#done = done
    this.#fail = fail
    // 'close' also follows a complete answer: clientGone() tells the two apart.
    res.on('close', () => { this.clientGone() })
  }

  /** Starts the next attempt. */
  send (): void {
    if (this.#clientLeft) { // it left while a retry was about to start
      this.#fail(new GatewayError('GW_ERR_CLIENT_CLOSED', { service: this.#service.name }), this.#greq)
      return
    }
    this.#attempt++
    this.#status = 0
    this.#retrying = false
    this.#abort = undefined
    this.#reason = undefined
    this.#timedOut = false
    const target = this.#target = this.#service.targets.pick()
    const timeoutMs = this.#timeoutMs
    const precise = timeoutMs < PRECISE_TIMER_BELOW_MS
    if (precise) this.#timer = setTimeout(timeUp, timeoutMs, this)
    const greq = this.#greq
    try {
      target.pool.dispatch({
        method: greq.method as Dispatcher.HttpMethod,
        path: buildPath(target, greq.params, greq.rawQuery),
        headers: this.#out.headers,
        body: this.#out.body ?? null,
        headersTimeout: precise ? 0 : timeoutMs,
        bodyTimeout: timeoutMs
      }, this)
    } catch (err) {
      this.onError(err as Error) // a closed pool, say: one more failed attempt
    }
  }

  timeUp (): void {
    this.#timedOut = true
    this.#cancel(new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', { service: this.#service.name }))
  }

  /**
   * The response closed. After a complete answer that is the normal end; after an answer that
   * was cut short or refused, undici's abort of a finished call does nothing.
   */
  clientGone (): void {
    if (this.#res.writableFinished) return
    this.#clientLeft = true
    this.#cancel(new GatewayError('GW_ERR_CLIENT_CLOSED', { service: this.#service.name }))
  }

  #cancel (reason: Error): void {
    if (this.#abort !== undefined) this.#abort(reason)
    else this.#reason = reason // still queued in the pool: aborted as soon as it is handed a socket
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#reason !== undefined) abort(this.#reason)
  }

  onHeaders (statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true // 1xx: the final answer follows
    clearTimeout(this.#timer)
    if (this.#attempt < this.#out.retries && RETRY_STATUS.has(statusCode)) {
      // Another attempt may answer better: this answer is read and dropped, never sent.
      this.#retrying = true
      return true
    }
    const greq = this.#greq
    try {
      this.#res.writeHead(statusCode, downstreamRawHeaders(raw, greq.responseHeaders, greq.id))
    } catch (err) {
      // A head Node refuses to write: nothing went out, so the front door answers 500. (undici's parser
      // already refuses the bytes Node would, as a 502; this is the net under that.)
      this.#abort?.(new GatewayError('GW_ERR_INTERNAL', { cause: err }))
      return false
    }
    this.#status = statusCode
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#retrying) return true
    const res = this.#res
    if (res.write(chunk)) return true
    if (!res.destroyed) res.once('drain', this.#resume!) // a client that left aborts the call instead (clientGone)
    return false
  }

  onComplete (): void {
    const target = this.#target!
    if (this.#retrying) {
      this.#service.targets.failed(target)
      this.#retry()
      return
    }
    this.#res.end()
    this.#service.targets.succeeded(target)
    this.#done({ status: this.#status, headers: SENT_HEADERS, body: undefined, sent: true }, this.#greq)
  }

  onError (err: Error): void {
    clearTimeout(this.#timer)
    const service = this.#service
    const target = this.#target!
    if (this.#retrying && !this.#clientLeft) {
      // The retry was decided on the status; whether the dropped body drained or not, it goes ahead
      // (and the target is counted as failed once, not again below).
      service.targets.failed(target)
      this.#retry()
      return
    }
    if (this.#status !== 0) {
      // The head is out: all that is left is to cut the response short.
      this.#res.destroy()
      this.#done({ status: this.#status, headers: SENT_HEADERS, body: undefined, sent: true }, this.#greq)
      return
    }
    const e = upstreamError(err, service.name, this.#timedOut)
    if (e.code === 'GW_ERR_UPSTREAM_UNREACHABLE') service.targets.failed(target)
    if (this.#attempt < this.#out.retries && e.retryable && !this.#clientLeft) {
      this.#retry()
      return
    }
    this.#fail(e, this.#greq)
  }

  /** The next attempt starts after undici has finished with this one. */
  #retry (): void {
    queueMicrotask(() => { this.send() })
  }
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
