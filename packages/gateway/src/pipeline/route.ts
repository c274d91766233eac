/**
 * One route + method, compiled once at start (STYLE §2): stages, merge,
 * hooks and transforms decided up front, so a request only runs the steps its
 * route needs. Single-service routes without transforms stream (stream.ts).
 */
import type { HttpRequest } from '@switchyard/protocol'
import { GatewayError, isGatewayError } from '@switchyard/protocol'
import type { Logger } from 'pino'
import type { FetchedHttpResponse, RouteConfigT, ServiceConfig, HttpProxyHooks } from '../config/types.js'
import { applyMapping } from '../policies/transform.js'
import type { ServiceTransport } from '../transports/types.js'
import { parseQuery, parseRequestBody } from './body.js'
import { toGatewayResponse, toHttpResponse, toServiceResponse } from './response-shape.js'
import { upstreamRequestHeaders } from './headers.js'
import { addForwardingHeaders } from '../server/forwarding.js'
import { isBreakerRefusal } from '../policies/breaker/breaker.js'
import { fireHook, runHook } from './hooks.js'
import { mergeResponses, type MergeInput, type ServiceResponse } from './merge.js'
import type { GatewayRequest, GatewayResponse } from './types.js'
import { errorResponse } from './respond.js'
import type { Metrics } from '../metrics.js'

export interface CompiledService {
  readonly name: string
  readonly config: ServiceConfig
  readonly transport: ServiceTransport
  /** The transport's invoke, wrapped by the service's policies (circuit breaker). */
  readonly invoke: ServiceTransport['invoke']
  /** A policy (circuit breaker) wraps `invoke`. */
  readonly guarded: boolean
  readonly stage: number
  readonly merge: boolean
  readonly awaitResponse: boolean
  readonly optional: boolean
  readonly timeoutMs: number
}

interface Outcome {
  svc: CompiledService
  request: HttpRequest | undefined
  response?: ServiceResponse
  error?: GatewayError
  time: number
}

/** The header that lists optional services that failed (a partial response). */
export const PARTIAL_HEADER = 'x-switchyard-partial'

/** The header that names the required service whose failure failed the request. */
export const FAILED_HEADER = 'x-switchyard-failed-service'

export const DEFAULT_TIMEOUT_MS = 30_000

export interface RouteDeps { log: Logger, metrics: Metrics, track: (p: Promise<unknown>) => void }

export class CompiledRoute {
  readonly path: string
  readonly method: string
  readonly services: readonly CompiledService[]
  readonly stages: readonly (readonly CompiledService[])[]
  readonly bodyLimit: number
  /** A Prism-style request view is built (hooks, mapping, Redis services, rollback hooks). */
  readonly needsView: boolean
  /** Response bodies are parsed (merge of several, mergeField, hooks, transforms). */
  readonly parse: boolean
  readonly genericErrors: boolean
  readonly #hooks: HttpProxyHooks
  readonly #deps: RouteDeps
  readonly #mergedCount: number
  /** Some hook receives the list of earlier responses (Prism's `fetchedResponses`). */
  readonly #needsFetched: boolean

  constructor (path: string, method: string, route: RouteConfigT, services: CompiledService[], globalHooks: HttpProxyHooks, bodyLimit: number, genericErrors: boolean, deps: RouteDeps) {
    this.path = path
    this.method = method
    this.services = services
    this.bodyLimit = bodyLimit
    this.genericErrors = genericErrors
    this.#deps = deps
    // Route hooks replace the global ones (Prism).
    this.#hooks = {
      onRequest: route.onRequest ?? globalHooks.onRequest,
      onResponse: route.onResponse ?? globalHooks.onResponse,
      onError: route.onError ?? globalHooks.onError,
      mergeResponses: route.mergeResponses
    }
    const byStage = new Map<number, CompiledService[]>()
    for (const s of services) {
      const list = byStage.get(s.stage) ?? []
      list.push(s)
      byStage.set(s.stage, list)
    }
    this.stages = [...byStage.keys()].sort((a, b) => a - b).map(k => byStage.get(k)!)
    const h = this.#hooks
    const serviceHooks = services.some(s => s.config.onRequest !== undefined || s.config.onResponse !== undefined || s.config.onError !== undefined || s.config.mapping !== undefined ||
      (s.config.type === 'http' && s.config.getUrl !== undefined) || (s.config.type === 'http' && s.config.rollback !== undefined))
    this.needsView = h.onRequest !== undefined || h.onResponse !== undefined || h.mergeResponses !== undefined || h.onError !== undefined ||
      serviceHooks || services.some(s => s.config.type !== 'http')
    this.#mergedCount = services.filter(s => s.merge && s.awaitResponse).length
    this.#needsFetched = h.onError !== undefined || h.mergeResponses !== undefined || services.some(s => s.config.onRequest !== undefined || s.config.onResponse !== undefined)
    this.parse = this.needsView || this.#mergedCount > 1 || services.some(s => s.config.mergeField !== undefined || s.config.responseMapping !== undefined) || genericErrors
  }

  /** Builds the request view services and hooks see (PROTOCOL §1.2). */
  #view (greq: GatewayRequest): HttpRequest {
    const headers = upstreamRequestHeaders(greq.headers, false)
    addForwardingHeaders(headers, greq)
    const view: HttpRequest = {
      path: greq.path,
      method: greq.method === 'HEAD' ? 'GET' : greq.method,
      params: { ...greq.params },
      query: parseQuery(greq.rawQuery),
      headers,
      remoteAddress: greq.remoteAddress,
      remotePort: greq.remotePort
    }
    if (greq.body.kind === 'buffer') {
      const body = parseRequestBody(greq.body.bytes, greq.headers['content-type'])
      if (body !== undefined) view.body = body
    }
    return view
  }

  async run (greq: GatewayRequest): Promise<GatewayResponse> {
    const log = greq.log
    // `original` is the request as the client sent it: a service whose view still holds
    // the same body object gets the client's bytes untouched.
    const original: HttpRequest | undefined = this.needsView ? this.#view(greq) : undefined
    let view = original
    const h = this.#hooks
    if (h.onRequest !== undefined && view !== undefined) {
      const v = view
      const r = await runHook('onRequest', greq, () => h.onRequest!(v))
      if (r?.handled === true) return await this.#finish(greq, view, toServiceResponse(r.response), [])
      if (r?.request !== undefined) view = r.request
    }
    const outcomes: Outcome[] = []
    const fetched: FetchedHttpResponse[] = []
    let failed: Outcome | undefined
    for (const stage of this.stages) {
      const stageState = new Map<string, unknown>()
      let results: Outcome[]
      try {
        results = await Promise.all(stage.map(async svc => await this.#callService(svc, greq, view, original, fetched, stageState)))
      } catch (err) {
        // A service hook threw: the earlier stages' work is undone like any other failure.
        return await this.#abort(greq, view, outcomes, fetched, err as GatewayError)
      }
      for (const o of results) {
        outcomes.push(o)
        if (!o.svc.awaitResponse) continue
        if (this.#needsFetched) fetched.push(toFetched(o, this.path, greq))
        if (isFailure(o)) {
          if (!o.svc.merge) log.warn({ reqId: greq.id, service: o.svc.name, status: o.response?.status, code: o.error?.code }, 'service failed (merge: false, ignored)')
          else if (o.svc.optional) log.warn({ reqId: greq.id, service: o.svc.name, status: o.response?.status, code: o.error?.code }, 'optional service failed')
          else failed ??= o
        }
      }
      if (failed !== undefined) break // a failing stage stops the later ones
    }
    if (failed !== undefined) return await this.#fail(greq, view, outcomes, fetched, failed)
    return await this.#merge(greq, view, outcomes, fetched)
  }

  async #callService (svc: CompiledService, greq: GatewayRequest, baseView: HttpRequest | undefined, original: HttpRequest | undefined, fetched: FetchedHttpResponse[], stageState: Map<string, unknown>): Promise<Outcome> {
    const start = performance.now()
    const log = greq.log
    const cfg = svc.config
    let view = baseView
    if (view !== undefined && cfg.mapping !== undefined) {
      view = { ...view, body: applyMapping(view.body, cfg.mapping.fields), headers: applyMapping(view.headers, cfg.mapping.headers) }
    }
    const outcome: Outcome = { svc, request: view, time: 0 }
    try {
      if (view !== undefined && cfg.onRequest !== undefined) {
        const hv = await svc.transport.hookView(view, greq)
        const seen = [...fetched] // a snapshot: later stages must not appear in a list a hook kept
        const r = await runHook(`services.${svc.name}.onRequest`, greq, () => cfg.onRequest!(hv, seen))
        if (r?.handled === true) {
          outcome.response = toServiceResponse(r.response)
        } else {
          view = r?.request ?? hv
          outcome.request = view
        }
      }
      if (outcome.response === undefined) {
        const call = { greq, view, baseView: original, parse: this.parse, timeoutMs: svc.timeoutMs, stageState }
        if (!svc.awaitResponse) {
          const p = svc.invoke(call).catch((err: unknown) => log.warn({ reqId: greq.id, service: svc.name, err }, 'fire-and-forget service failed'))
          this.#deps.track(p)
          return outcome
        }
        outcome.response = await svc.invoke(call)
      }
      if (outcome.response.status >= 400 && cfg.onError !== undefined) {
        const resp = toHttpResponse(outcome.response); const req = view!
        fireHook(`services.${svc.name}.onError`, greq, () => cfg.onError!(resp, req))
      }
      if (cfg.onResponse !== undefined && view !== undefined) {
        const resp = toHttpResponse(outcome.response); const req = view
        const seen = [...fetched]
        const r = await runHook(`services.${svc.name}.onResponse`, greq, () => cfg.onResponse!(resp, req, seen))
        if (r !== undefined && r !== null) outcome.response = toServiceResponse(r)
      }
      if (cfg.responseMapping !== undefined) {
        const r = outcome.response
        outcome.response = { ...r, body: applyMapping(r.body, cfg.responseMapping.fields), headers: applyMapping(r.headers, cfg.responseMapping.headers) }
      }
    } catch (err) {
      outcome.error = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err, service: svc.name })
      if (outcome.error.code === 'GW_ERR_HOOK_FAILED') throw outcome.error
      if (cfg.onError !== undefined && view !== undefined) {
        const req = view
        fireHook(`services.${svc.name}.onError`, greq, () => cfg.onError!(undefined, req))
      }
    } finally {
      outcome.time = performance.now() - start
      this.#deps.metrics.serviceCall(svc.name, svc.config.type, outcome.error?.code ?? String(outcome.response?.status ?? 0))
    }
    return outcome
  }

  async #fail (greq: GatewayRequest, view: HttpRequest | undefined, outcomes: Outcome[], fetched: FetchedHttpResponse[], failed: Outcome): Promise<GatewayResponse> {
    greq.log.warn({ reqId: greq.id, service: failed.svc.name, status: failed.response?.status, code: failed.error?.code, err: failed.error?.cause }, 'required service failed')
    if (failed.response !== undefined && (this.#mergedCount === 1 || isBreakerRefusal(failed.response))) {
      // Nothing to merge, or an open breaker's 503 with its Retry-After: that answer is the most useful one; a header names the service.
      this.#undo(greq, view, outcomes.filter(o => o !== failed), fetched)
      const res = await this.#finish(greq, view, failed.response, [])
      res.headers[FAILED_HEADER] = failed.svc.name
      return res
    }
    const err = failed.response !== undefined
      ? new GatewayError('GW_ERR_SERVICE_FAILED', { statusCode: failed.response.status, service: failed.svc.name, data: { status: failed.response.status } })
      : failed.error!
    return await this.#abort(greq, view, outcomes.filter(o => o !== failed), fetched, err)
  }

  /** Any failure after services ran: roll back what succeeded, tell onError, answer the error. */
  async #abort (greq: GatewayRequest, view: HttpRequest | undefined, outcomes: Outcome[], fetched: FetchedHttpResponse[], err: GatewayError): Promise<GatewayResponse> {
    this.#undo(greq, view, outcomes, fetched)
    const res = await this.#finishError(greq, view, err)
    if (err.service !== undefined) res.headers[FAILED_HEADER] = err.service
    return res
  }

  #undo (greq: GatewayRequest, view: HttpRequest | undefined, outcomes: Outcome[], fetched: FetchedHttpResponse[]): void {
    // Only services known to have succeeded: not failed ones, not fire-and-forget ones.
    this.#rollback(greq, view, outcomes.filter(o => o.svc.awaitResponse && !isFailure(o)))
    const onError = this.#hooks.onError
    if (onError !== undefined && view !== undefined) {
      const v = view
      fireHook('onError', greq, () => onError(fetched, v))
    }
  }

  #rollback (greq: GatewayRequest, view: HttpRequest | undefined, succeeded: Outcome[]): void {
    if (view === undefined) return
    const sent = new Set<string>()
    for (const o of succeeded) {
      const rb = o.svc.transport.rollback
      if (rb === undefined) continue
      const p = rb.call(o.svc.transport, greq, view, sent).then(
        () => this.#deps.metrics.rollback(o.svc.name, 'sent'),
        (err: unknown) => {
          this.#deps.metrics.rollback(o.svc.name, 'failed')
          greq.log.error({ reqId: greq.id, service: o.svc.name, err }, 'rollback failed')
        })
      this.#deps.track(p)
    }
  }

  async #merge (greq: GatewayRequest, view: HttpRequest | undefined, outcomes: Outcome[], fetched: FetchedHttpResponse[]): Promise<GatewayResponse> {
    const failedOptional: string[] = []
    let inputs: MergeInput[] = []
    // Merge order is config order, whatever the stages.
    const ordered = [...outcomes].sort((a, b) => this.services.indexOf(a.svc) - this.services.indexOf(b.svc))
    for (const o of ordered) {
      if (!o.svc.awaitResponse || !o.svc.merge) continue
      if (isFailure(o)) { failedOptional.push(o.svc.name); continue }
      inputs.push({ service: o.svc.name, mergeField: o.svc.config.mergeField, response: o.response! })
    }
    const mr = this.#hooks.mergeResponses
    if (mr !== undefined && view !== undefined) {
      const v = view
      const list = fetched.filter(f => inputs.some(i => i.service === f.service))
      const r = await runHook('mergeResponses', greq, () => mr(list, v))
      if (Array.isArray(r)) {
        inputs = r.map(f => ({ service: f.service, mergeField: this.services.find(s => s.name === f.service)?.config.mergeField, response: toServiceResponse(f.response) }))
      }
    }
    let merged: ServiceResponse
    if (inputs.length === 0) {
      const awaited = this.services.some(s => s.awaitResponse)
      merged = { status: awaited ? (failedOptional.length > 0 ? 200 : 204) : 202, headers: {}, body: failedOptional.length > 0 ? {} : undefined, raw: false }
    } else {
      try {
        merged = mergeResponses(inputs)
      } catch (err) {
        greq.log.warn({ reqId: greq.id, err }, 'merge failed')
        return await this.#abort(greq, view, outcomes, fetched, err as GatewayError)
      }
    }
    return await this.#finish(greq, view, merged, failedOptional)
  }

  async #finishError (greq: GatewayRequest, view: HttpRequest | undefined, err: GatewayError): Promise<GatewayResponse> {
    const onResponse = this.#hooks.onResponse
    const e = errorResponse(this.genericErrors && err.statusCode >= 500 ? new GatewayError('GW_ERR_INTERNAL') : err, greq.id)
    if (onResponse === undefined || view === undefined) return e
    const asService: ServiceResponse = { status: e.status, headers: e.headers, body: JSON.parse((e.body as Buffer).toString()), raw: false }
    return await this.#finish(greq, view, asService, [])
  }

  async #finish (greq: GatewayRequest, view: HttpRequest | undefined, response: ServiceResponse, failedOptional: string[]): Promise<GatewayResponse> {
    let r = response
    const onResponse = this.#hooks.onResponse
    if (onResponse !== undefined && view !== undefined) {
      const resp = toHttpResponse(r); const v = view
      const out = await runHook('onResponse', greq, () => onResponse(resp, v))
      if (out !== undefined && out !== null) r = toServiceResponse(out)
    }
    if (this.genericErrors && r.status >= 500) return errorResponse(new GatewayError('GW_ERR_INTERNAL'), greq.id)
    const res = toGatewayResponse(r)
    if (failedOptional.length > 0) res.headers[PARTIAL_HEADER] = failedOptional.join(',')
    return res
  }
}

function isFailure (o: Outcome): boolean {
  return o.error !== undefined || (o.response !== undefined && o.response.status >= 400)
}

function toFetched (o: Outcome, route: string, greq: GatewayRequest): FetchedHttpResponse {
  return {
    type: o.svc.config.type,
    id: greq.id,
    service: o.svc.name,
    time: o.time,
    route,
    path: o.request?.path ?? greq.path,
    method: greq.method,
    stage: o.svc.config.stage,
    response: o.response !== undefined ? toHttpResponse(o.response) : { status: o.error?.statusCode ?? 500, body: { error: { code: o.error?.code, message: o.error?.message } } }
  }
}

export type { ServiceConfig }
