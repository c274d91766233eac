/**
 * One service's breaker: the state machine, its optional shared link, and the
 * wrapper that guards a call — a transport's `invoke` (buffered routes) or the
 * streaming terminal handler, with the same code.
 */
import { GatewayError, errorBody, isGatewayError } from '@switchyard/protocol'
import type { ServiceResponse } from '../../pipeline/merge.js'
import type { GatewayRequest, GatewayResponse } from '../../pipeline/types.js'
import type { ServiceCall } from '../../transports/types.js'
import { BreakerMachine, type Outcome, type Permit, type Transition } from './machine.js'
import type { BreakerSpec } from './options.js'
import type { SharedLink } from './shared.js'

/** The breaker's own refusals: never counted, by this breaker or any other. */
const ownRefusals = new WeakSet<object>()

/** Whether `res` is a refusal a breaker made. */
export function isBreakerRefusal (res: unknown): boolean {
  return typeof res === 'object' && res !== null && ownRefusals.has(res)
}

/** A refusal that is both a ServiceResponse (raw bytes) and a GatewayResponse. */
export type Refusal = ServiceResponse & GatewayResponse

/**
 * Failures (PRODUCT §4.4): timeouts, transport errors (502/503/504) and 5xx
 * answers. Not 4xx, not the client going away, not a breaker's own refusal.
 */
export function outcomeOf (result: { ok: true, value: unknown } | { ok: false, error: unknown }): Outcome {
  if (result.ok) {
    const v = result.value as { status?: unknown } | null
    if (isBreakerRefusal(v)) return 'ignore'
    return typeof v?.status === 'number' && v.status >= 500 ? 'failure' : 'success'
  }
  const e = result.error
  if (!isGatewayError(e)) return 'failure' // the transport contract says never; count it
  switch (e.code) {
    case 'GW_ERR_CIRCUIT_OPEN':
    case 'GW_ERR_CLIENT_CLOSED':
    case 'GW_ERR_HOOK_FAILED':
    case 'GW_ERR_SHUTTING_DOWN':
      return 'ignore'
  }
  return e.statusCode >= 500 ? 'failure' : 'ignore'
}

export interface BreakerInit {
  readonly id: string
  readonly service: string
  readonly spec: BreakerSpec
  /** The service's timeout: a probe's lease on the shared state outlives it. */
  readonly timeoutMs: number
  readonly onTransition: (t: Transition) => void
}

/** A probe lease outlives the call's timeout by this much, in milliseconds. */
const LEASE_MARGIN_MS = 1000

export class Breaker {
  readonly id: string
  readonly service: string
  readonly spec: BreakerSpec
  readonly machine: BreakerMachine
  readonly routes = new Set<string>()
  readonly #timeoutMs: number
  #shared: SharedLink | undefined

  constructor (init: BreakerInit) {
    this.id = init.id
    this.service = init.service
    this.spec = init.spec
    this.#timeoutMs = init.timeoutMs
    this.machine = new BreakerMachine(init.spec.settings, {
      onTransition: (t) => {
        init.onTransition(t)
        if (t.source !== 'local') return
        if (t.to === 'open') this.#shared?.opened()
        else if (t.to === 'closed') this.#shared?.closed()
      }
    })
  }

  get shared (): boolean { return this.#shared !== undefined }

  share (link: SharedLink): void { this.#shared = link }

  /** Guards `fn`: an invoke (its argument is a ServiceCall) or a handler (a GatewayRequest). */
  wrap<F extends (arg: ServiceCall | GatewayRequest) => Promise<unknown>>(fn: F): F {
    const guarded = async (arg: ServiceCall | GatewayRequest): Promise<unknown> => {
      const call = 'greq' in arg ? arg : undefined
      const greq = call?.greq ?? arg as GatewayRequest
      return await this.run(async () => await fn(arg), greq, (call?.timeoutMs ?? this.#timeoutMs) + LEASE_MARGIN_MS)
    }
    Object.defineProperty(guarded, 'name', { value: `circuitBreaker(${this.service})` })
    return guarded as F
  }

  async run<T> (fn: () => Promise<T>, greq: GatewayRequest, leaseMs: number): Promise<T | Refusal> {
    const m = this.machine
    let a = m.admit()
    if (a.ok && a.permit.probe && this.#shared !== undefined) {
      // One probe for the whole cluster: Redis decides which instance sends it.
      const permit = a.permit
      const verdict = await this.#shared.probe(leaseMs)
      if (verdict === 'closed') {
        m.release(permit)
        m.forceClose('closed on another instance', 'shared')
        a = m.admit()
      } else if (verdict === 'open' || verdict === 'probing-elsewhere') {
        m.release(permit)
        a = m.admit()
        if (a.ok) { m.release(a.permit); a = { ok: false, retryAfterMs: 1000 } }
      }
    }
    if (!a.ok) return this.#refuse(greq, a.retryAfterMs)
    const permit: Permit = a.permit
    let value: T
    try {
      value = await fn()
    } catch (err) {
      m.record(permit, outcomeOf({ ok: false, error: err }))
      throw err
    }
    m.record(permit, outcomeOf({ ok: true, value }))
    return value
  }

  #refuse (greq: GatewayRequest, retryAfterMs: number): Refusal {
    const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
    const { errorStatus, errorBody: custom } = this.spec
    let status = errorStatus ?? 503
    let body: Buffer
    let type = 'application/json; charset=utf-8'
    if (custom === undefined) {
      const e = new GatewayError('GW_ERR_CIRCUIT_OPEN', { service: this.service, statusCode: errorStatus, data: { retryAfterSeconds } })
      status = e.statusCode
      body = Buffer.from(JSON.stringify(errorBody(e, greq.id)))
    } else if (typeof custom === 'string') {
      body = Buffer.from(custom)
      type = 'text/plain; charset=utf-8'
    } else {
      body = Buffer.from(JSON.stringify(custom))
    }
    const res: Refusal = { status, headers: { 'content-type': type, 'retry-after': String(retryAfterSeconds) }, body, raw: true }
    ownRefusals.add(res)
    return res
  }
}
