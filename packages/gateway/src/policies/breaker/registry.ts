/**
 * The breakers of one gateway. A service named in several routes with the
 * same upstream and the same breaker settings has one breaker: a down
 * upstream opens it for every route. Provides `gateway.api('breakers')`.
 */
import { Counter, Gauge } from 'prom-client'
import type { PolicyDeps } from '../types.js'
import { Breaker } from './breaker.js'
import type { BreakerSnapshot, CircuitState, Transition } from './machine.js'
import type { BreakerSpec } from './options.js'
import { SharedBreakers } from './shared.js'

export type BreakerEventName = 'circuit.opened' | 'circuit.half-opened' | 'circuit.closed'

/** A change of state, as logged and as `subscribe` listeners receive it. */
export interface BreakerEvent {
  event: BreakerEventName
  /** The breaker id: the service name (`name#2` for a second breaker of the same name). */
  breaker: string
  service: string
  from: CircuitState
  reason: string
  /** `local`: this instance's calls; `shared`: another instance, through Redis. */
  source: 'local' | 'shared'
  /** Epoch ms at which it half-opens (circuit.opened). */
  openUntil?: number
}

/** One breaker as `states()` shows it. */
export interface BreakerState extends BreakerSnapshot {
  service: string
  /** The routes using it, as `METHOD /path`. */
  routes: string[]
  /** Whether its state is shared through Redis. */
  shared: boolean
  /** Milliseconds before an open breaker half-opens. */
  retryAfterMs?: number
}

/** `gateway.api('breakers')`. */
export interface BreakersApi {
  /** Every breaker by id (the service name), serializable. */
  states: () => Record<string, BreakerState>
  /** Calls `listener` on every change of state; returns the unsubscribe function. */
  subscribe: (listener: (e: BreakerEvent) => void) => () => void
  /** Resolves true once Redis is reachable for shared breakers (false after `timeoutMs`, or when none is shared). */
  waitShared: (timeoutMs?: number) => Promise<boolean>
}

export interface BreakerRegistry {
  /** The breaker for this service, upstream and settings (created once). */
  get: (service: string, upstream: string, spec: BreakerSpec, shared: boolean, timeoutMs: number) => Breaker
}

const EVENTS: Record<CircuitState, BreakerEventName> = { open: 'circuit.opened', 'half-open': 'circuit.half-opened', closed: 'circuit.closed' }
const STATE_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 }

const registries = new WeakMap<PolicyDeps, BreakerRegistry>()

export function breakerRegistry (deps: PolicyDeps): BreakerRegistry {
  let reg = registries.get(deps)
  if (reg !== undefined) return reg
  const byFingerprint = new Map<string, Breaker>()
  const byId = new Map<string, Breaker>()
  const listeners = new Set<(e: BreakerEvent) => void>()
  let shared: SharedBreakers | undefined
  const registers = [deps.metrics.registry]
  const stateGauge = new Gauge({ name: 'switchyard_circuit_state', help: 'Circuit breaker state by breaker (0 closed, 1 half-open, 2 open)', labelNames: ['breaker', 'service'], registers })
  const transitions = new Counter({ name: 'switchyard_circuit_transitions_total', help: 'Circuit breaker changes of state', labelNames: ['breaker', 'service', 'state', 'source'], registers })

  const emit = (b: { id: string, service: string }, t: Transition): void => {
    const e: BreakerEvent = { event: EVENTS[t.to], breaker: b.id, service: b.service, from: t.from, reason: t.reason, source: t.source }
    if (t.openUntil !== undefined) e.openUntil = t.openUntil
    stateGauge.labels(b.id, b.service).set(STATE_VALUE[t.to])
    transitions.labels(b.id, b.service, t.to, t.source).inc()
    const fields = { event: e.event, breaker: b.id, service: b.service, from: t.from, reason: t.reason, source: t.source, openUntil: e.openUntil }
    if (t.to === 'open') deps.log.warn(fields, e.event)
    else deps.log.info(fields, e.event)
    for (const l of listeners) {
      try { l(e) } catch (err) { deps.log.error({ err }, 'breaker listener threw') }
    }
  }

  reg = {
    get (service, upstream, spec, isShared, timeoutMs) {
      const fingerprint = JSON.stringify([service, upstream, spec.settings, isShared, spec.errorStatus, safeJson(spec.errorBody)])
      let b = byFingerprint.get(fingerprint)
      if (b !== undefined) return b
      let id = service
      for (let n = 2; byId.has(id); n++) id = `${service}#${n}`
      const info = { id, service }
      b = new Breaker({ id, service, spec, timeoutMs, onTransition: (t) => emit(info, t) })
      if (isShared) {
        shared ??= new SharedBreakers(deps.redis()!, deps.prefix, deps.instanceId, deps.log)
        b.share(shared.link(id, b.machine))
      }
      stateGauge.labels(id, service).set(0)
      byFingerprint.set(fingerprint, b)
      byId.set(id, b)
      return b
    }
  }
  registries.set(deps, reg)

  const api: BreakersApi = {
    states () {
      const out: Record<string, BreakerState> = {}
      const now = Date.now()
      for (const [id, b] of byId) {
        const s: BreakerState = { ...b.machine.toJSON(), service: b.service, routes: [...b.routes], shared: b.shared }
        if (s.openUntil !== undefined) s.retryAfterMs = Math.max(0, s.openUntil - now)
        out[id] = s
      }
      return out
    },
    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    waitShared: async (timeoutMs = 10_000) => shared === undefined ? false : await shared.waitReady(timeoutMs)
  }
  deps.provide('breakers', api)
  deps.onClose(() => {
    for (const b of byId.values()) b.machine.dispose()
    shared?.close()
    listeners.clear()
  })
  return reg
}

function safeJson (v: unknown): string | undefined {
  try {
    return JSON.stringify(v)
  } catch {
    return String(v)
  }
}
