/**
 * Helpers for the rate-limit and circuit-breaker tests: gateways on port 0,
 * a backend that can go down and come back on the same port (and hold
 * requests), concurrent requests, and waits on breaker events (no sleeps).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { createGateway, type Gateway } from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/config/types.js'
import type { BreakerEvent, BreakersApi, BreakerState } from '../../src/policies/circuit-breaker.js'
import type { RateLimitsApi } from '../../src/policies/rate-limit.js'

export interface Started { url: string, gw: Gateway }

interface AfterHost { after: (fn: () => Promise<void> | void) => void }

/** A gateway on 127.0.0.1:0 with a silent logger, closed after the test. */
export async function gateway (config: GatewayConfig, t: AfterHost): Promise<Started> {
  const gw = createGateway(config, { logger: pino({ level: 'silent' }) })
  t.after(async () => { await gw.close() })
  const url = await gw.listen(0, '127.0.0.1')
  return { url, gw }
}

export function rateLimits (gw: Gateway): RateLimitsApi {
  const api = gw.api<RateLimitsApi>('rateLimits')
  if (api === undefined) throw new Error('no rateLimits api: is rateLimiting configured?')
  return api
}

export function breakers (gw: Gateway): BreakersApi {
  const api = gw.api<BreakersApi>('breakers')
  if (api === undefined) throw new Error('no breakers api: is circuitBreaker configured?')
  return api
}

/** Resolves when breaker `id` of `gw` is in `state` (now or on a later change). */
export async function breakerIn (gw: Gateway, id: string, state: BreakerState['state'], timeoutMs = 10_000): Promise<void> {
  const api = breakers(gw)
  if (api.states()[id]?.state === state) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`breaker ${id} not ${state} within ${timeoutMs} ms: ${JSON.stringify(api.states()[id])}`)) }, timeoutMs)
    const off = api.subscribe(() => {
      if (api.states()[id]?.state === state) { clearTimeout(timer); off(); resolve() }
    })
  })
}

/**
 * Starts listening now (call it before the cause): resolves with the next
 * `event` of breaker `id`, whenever it happens.
 */
export async function breakerEvent (gw: Gateway, id: string, event: BreakerEvent['event'], timeoutMs = 10_000): Promise<BreakerEvent> {
  const api = breakers(gw)
  return await new Promise<BreakerEvent>((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${event} for ${id} within ${timeoutMs} ms: ${JSON.stringify(api.states()[id])}`)) }, timeoutMs)
    const off = api.subscribe((e) => {
      if (e.breaker === id && e.event === event) { clearTimeout(timer); off(); resolve(e) }
    })
  })
}

export interface Reply { status: number, headers: Headers, body: string }

export async function get (url: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, { ...init, headers })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/** `n` requests at once; `make(i)` gives each one's url and headers. */
export async function burst (n: number, make: (i: number) => { url: string, headers?: Record<string, string>, init?: RequestInit }): Promise<Reply[]> {
  return await Promise.all(Array.from({ length: n }, async (_, i) => {
    const r = make(i)
    return await get(r.url, r.headers, r.init)
  }))
}

export function countBy (replies: readonly Reply[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const r of replies) out[r.status] = (out[r.status] ?? 0) + 1
  return out
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * A backend on a fixed port that can be taken down (connections refused) and
 * brought back; `hold()` makes it keep requests until `release()`.
 */
export class FlakyBackend {
  readonly port: number
  hits = 0
  status = 200
  /** Called at every request's arrival. */
  onHit: (() => void) | undefined
  #server: Server | undefined
  #held: Array<() => void> | undefined
  readonly #arrivals: Array<() => void> = []

  private constructor (port: number) { this.port = port }

  get url (): string { return `http://127.0.0.1:${this.port}` }

  /** Starts up on a free port. */
  static async start (): Promise<FlakyBackend> {
    const probe = createServer()
    probe.listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>(resolve => probe.close(() => resolve()))
    const b = new FlakyBackend(port)
    await b.up()
    return b
  }

  async up (): Promise<void> {
    if (this.#server !== undefined) return
    const handler: Handler = (req, res) => {
      this.hits++
      this.onHit?.()
      req.resume()
      const answer = (): void => {
        res.writeHead(this.status, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ status: this.status, hit: this.hits }))
      }
      for (const a of this.#arrivals.splice(0)) a()
      if (this.#held !== undefined) this.#held.push(answer)
      else answer()
    }
    const server = createServer(handler)
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
    this.#server = server
  }

  async down (): Promise<void> {
    const s = this.#server
    if (s === undefined) return
    this.#server = undefined
    this.release()
    await new Promise<void>(resolve => { s.close(() => resolve()); s.closeAllConnections() })
  }

  /** Requests wait from now on until `release()`. */
  hold (): void { this.#held ??= [] }

  release (): void {
    const held = this.#held
    this.#held = undefined
    for (const answer of held ?? []) answer()
  }

  /** Resolves at the next request's arrival. */
  async arrival (): Promise<void> {
    await new Promise<void>(resolve => this.#arrivals.push(resolve))
  }
}

/**
 * The half-open probe under concurrent traffic. With `backend` holding
 * requests, sends rounds of `perRound` concurrent requests over `urls` until
 * one reaches the backend (each round waits for the last to be answered, so a
 * breaker still open for a few more milliseconds costs a round, not a sleep).
 * Then waits until every other request is answered while the probe is still
 * held, and releases it. `hitsWhileHeld` is how many requests reached the
 * backend before the release.
 */
export async function probeWhileHeld (backend: FlakyBackend, urls: readonly string[], perRound = 20): Promise<{ replies: Reply[], hitsWhileHeld: number }> {
  const before = backend.hits
  backend.hold()
  const state = { arrived: false }
  const arrival = backend.arrival().then(() => { state.arrived = true })
  const all: Array<Promise<Reply>> = []
  let settled = 0
  let wake: (() => void) | undefined
  for (let round = 0; !state.arrived; round++) {
    if (round === 100) throw new Error('no probe reached the backend in 100 rounds')
    const batch = Array.from({ length: perRound }, async (_, i) => {
      try { return await get(urls[i % urls.length]!) } finally { settled++; wake?.() }
    })
    all.push(...batch)
    await Promise.race([arrival, Promise.allSettled(batch)])
  }
  // Every request is now either answered or held at the backend (the probe, and any other that got through).
  await new Promise<void>(resolve => {
    wake = () => { if (settled + backend.hits - before >= all.length) resolve() }
    backend.onHit = wake
    wake()
  })
  backend.onHit = undefined
  const hitsWhileHeld = backend.hits - before
  backend.release()
  return { replies: await Promise.all(all), hitsWhileHeld }
}
