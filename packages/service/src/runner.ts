/**
 * Runs handlers: builds the context, turns whatever the handler does (returns,
 * throws, returns something that is not a response) into a reply, and tracks
 * the work so `close()` can wait for it. Shared by both consumers.
 */
import { isGatewayError, type HttpResponse, type ReplyMessage, type RequestMessage, type RollbackMessage } from '@switchyard/protocol'
import { Slots, Tracker } from './limiter.js'
import { errField } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { RequestContext, RequestEventInfo, ServiceEvents } from './types.js'

export type Emit = <K extends keyof ServiceEvents>(event: K, ...args: ServiceEvents[K]) => void

/** Where a message came from, beyond the message itself. */
export interface Delivery {
  entryId?: string
  deliveries?: number
}

const MAX_ERROR_MESSAGE = 1000
/** setTimeout fires at once past this delay, so a far deadline gets no timer. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * An event's request fields. Built property by property, not as
 * `{ id, ...delivery }`: the event adds its own fields to it, and on Node 20
 * (V8 11.3) each property added to an object made by spread takes a slow path
 * (~0.6 µs each, once per request; docs/performance.md).
 */
function eventInfo (id: string, delivery: Delivery): RequestEventInfo {
  const info: RequestEventInfo = { id }
  if (delivery.entryId !== undefined) info.entryId = delivery.entryId
  if (delivery.deliveries !== undefined) info.deliveries = delivery.deliveries
  return info
}

/** The reply body for a thrown error: a code and a message, never a stack (STYLE §5). */
export function errorResponse (err: unknown): HttpResponse {
  if (isGatewayError(err)) {
    return { status: err.statusCode, body: { error: { ...err.data, code: err.code, message: err.message } } }
  }
  let message = err instanceof Error ? err.message : 'The service handler threw a value that is not an Error'
  if (message.length > MAX_ERROR_MESSAGE) message = `${message.slice(0, MAX_ERROR_MESSAGE)}…`
  return { status: 500, body: { error: { code: 'GW_ERR_SERVICE_HANDLER', message } } }
}

/** Checks what a handler returned; byte bodies become base64 (PROTOCOL §1.2 extension). */
export function normalizeResponse (value: unknown): HttpResponse {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`The handler must return an HttpResponse object ({ status, headers, body }), not ${Array.isArray(value) ? 'an array' : typeof value}`)
  }
  const res = { ...(value as HttpResponse) }
  if (res.status !== undefined && (!Number.isInteger(res.status) || res.status < 100 || res.status > 599)) {
    throw new TypeError(`The handler returned status ${String(res.status)}; it must be an integer from 100 to 599`)
  }
  const body = res.body
  if (body instanceof Uint8Array) {
    res.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64')
    res.bodyEncoding = 'base64'
  }
  return res
}

export interface RequestOutcome {
  /** The reply message as JSON. */
  reply: string
  status: number
  /** Emits `request.completed` or `request.failed`; call it once the reply is sent. */
  report: () => void
}

export class Executor {
  readonly slots: Slots
  readonly tracker = new Tracker()
  readonly #opts: ResolvedOptions
  readonly #emit: Emit
  readonly #controllers = new Set<AbortController>()
  #abandoned = false

  constructor (opts: ResolvedOptions, emit: Emit) {
    this.#opts = opts
    this.#emit = emit
    this.slots = new Slots(opts.concurrency)
  }

  /** True once close() stopped waiting: late results must not be acknowledged or sent. */
  get abandoned (): boolean { return this.#abandoned }

  /** Aborts every running handler's signal; their results will be dropped. */
  abandon (): void {
    this.#abandoned = true
    for (const ac of this.#controllers) ac.abort(new DOMException('The service is closing', 'AbortError'))
  }

  #context (message: RequestMessage | RollbackMessage, delivery: Delivery, signal: AbortSignal): RequestContext {
    const o = this.#opts
    return {
      id: message.id,
      service: o.service,
      replicaId: o.replicaId,
      transport: o.transport.kind,
      deadline: message.type === 'request' ? message.deadline : undefined,
      traceparent: message.type === 'request' ? message.traceparent : undefined,
      auth: message.type === 'request' ? message.auth : undefined,
      signal,
      entryId: delivery.entryId,
      deliveries: delivery.deliveries,
      message
    }
  }

  async #withSignal<T> (deadline: number | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController()
    this.#controllers.add(ac)
    let timer: NodeJS.Timeout | undefined
    if (deadline !== undefined) {
      const delay = deadline - Date.now()
      if (delay <= 0) ac.abort(new DOMException('The request deadline passed', 'TimeoutError'))
      else if (delay < MAX_TIMER_MS) {
        timer = setTimeout(() => ac.abort(new DOMException('The request deadline passed', 'TimeoutError')), delay)
        timer.unref()
      }
    }
    try {
      return await fn(ac.signal)
    } finally {
      clearTimeout(timer)
      this.#controllers.delete(ac)
    }
  }

  /**
   * Runs the handler for `message` and returns the reply as JSON, ready to PUBLISH.
   * Never throws: a failing handler gives a 500 reply. Call `report()` once the
   * reply is sent (and, on streams, acknowledged) to log and emit the outcome.
   */
  async runRequest (message: RequestMessage, delivery: Delivery): Promise<RequestOutcome> {
    const o = this.#opts
    const started = performance.now()
    let response: HttpResponse
    let failure: unknown
    try {
      response = await this.#withSignal(message.deadline, async signal =>
        normalizeResponse(await o.handler(message.request, this.#context(message, delivery, signal))))
    } catch (err) {
      failure = err
      response = errorResponse(err)
    }
    const build = (r: HttpResponse): string => JSON.stringify({ id: message.id, service: o.service, response: r } satisfies ReplyMessage)
    let reply: string
    try {
      reply = build(response)
    } catch (err) {
      // BigInt, cycles: the handler's response cannot cross the wire.
      failure ??= err
      response = errorResponse(new TypeError(`The handler returned a response that is not JSON-serializable: ${err instanceof Error ? err.message : String(err)}`))
      reply = build(response)
    }
    const durationMs = performance.now() - started
    const status = response.status ?? (response.body === undefined ? 204 : 200)
    if (failure !== undefined) {
      o.logger.error({ requestId: message.id, service: o.service, ...delivery, err: errField(failure) }, 'handler failed; replying 500')
    }
    return {
      reply,
      status,
      report: () => {
        const info = eventInfo(message.id, delivery)
        if (failure !== undefined) this.#emit('request.failed', Object.assign(info, { error: failure, durationMs }))
        else this.#emit('request.completed', Object.assign(info, { status, durationMs }))
      }
    }
  }

  /**
   * Runs the rollback handler (if any). Never throws. `ok` is false when it threw;
   * call `report()` once the rollback is acknowledged.
   */
  async runRollback (message: RollbackMessage, delivery: Delivery): Promise<{ ok: boolean, report: () => void }> {
    const o = this.#opts
    const info = eventInfo(message.id, delivery)
    const completed = { ok: true, report: () => this.#emit('rollback.completed', info) }
    if (o.rollback === undefined) {
      o.logger.debug?.({ requestId: message.id, service: o.service }, 'rollback received; no rollback handler, ignored')
      return completed
    }
    const rollback = o.rollback
    try {
      await this.#withSignal(undefined, async signal => { await rollback(message.request, this.#context(message, delivery, signal)) })
      return completed
    } catch (err) {
      o.logger.error({ requestId: message.id, service: o.service, ...delivery, err: errField(err) }, 'rollback handler failed')
      return { ok: false, report: () => this.#emit('rollback.failed', Object.assign(eventInfo(message.id, delivery), { error: err })) }
    }
  }
}
