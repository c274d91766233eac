/**
 * The per-request cost of the JWT and rate-limit policies on their own, in
 * process, against a real Redis: the JavaScript a request pays in
 * `authenticate` and `rateLimited` (token lookup, keys, the batched EVALSHA
 * and its reply, the RateLimit-* headers), without the HTTP around them.
 * End-to-end figures are `npm run bench`; this one is steadier for A/B runs of
 * one change, since no socket to a client or a service is involved. Run:
 *
 *   REDIS_URL=redis://127.0.0.1:6379 node --import tsx bench/micro/policies.ts
 *
 * Keys go under a random prefix and expire with their window (a minute).
 * Prints CPU µs per request for: no policy, JWT, the rate limit (Prism's
 * sliding window and GCRA), and JWT + rate limit, with 50 requests in flight
 * per event-loop turn as in the benchmark. Not part of `npm run bench`.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { SignJWT } from 'jose'
import { pino } from 'pino'
import type { GatewayConfig } from '../../packages/gateway/src/config/types.js'
import { Metrics } from '../../packages/gateway/src/metrics.js'
import type { GatewayRequest, GatewayResponse } from '../../packages/gateway/src/pipeline/types.js'
import { authJwt } from '../../packages/gateway/src/policies/auth-jwt.js'
import { rateLimit } from '../../packages/gateway/src/policies/rate-limit.js'
import { compose, type Policy, type PolicyDeps, type RouteTarget } from '../../packages/gateway/src/policies/types.js'

const SECRET = 'switchyard-bench-secret-0123456789abcdef'
const IN_FLIGHT = 50
const TURNS = Number(process.env.TURNS ?? 2000)
const ROUNDS = Number(process.env.ROUNDS ?? 5)

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: false, lazyConnect: true })
await redis.connect()
const token = await new SignJWT({ sub: 'bench-user' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))
const silent = pino({ level: 'silent' })
const closers: Array<() => Promise<void> | void> = []

function deps (): PolicyDeps {
  return {
    log: silent,
    metrics: new Metrics(),
    config: { redis: {}, http: { routes: {} } } as unknown as GatewayConfig,
    instanceId: 'bench',
    prefix: `bench-micro-${randomUUID().slice(0, 8)}`,
    redis: () => ({ command: redis }) as unknown as ReturnType<PolicyDeps['redis']>,
    onClose: (fn) => { closers.push(fn) },
    provide: () => {}
  }
}

const jwt = { type: 'jwt', key: SECRET, jwtHeaderField: 'authorization' }
const routes: Record<string, Record<string, unknown>> = {
  none: {},
  jwt: { authentication: jwt },
  'rate limit, sliding window (Prism type: ip)': { rateLimiting: { type: 'ip', maxRequests: 1e9, duration: 60_000 } },
  'rate limit, gcra': { rateLimiting: { limit: 1e9, windowMs: 60_000 } },
  'jwt + sliding window (the bench route)': { authentication: jwt, rateLimiting: { type: 'ip', maxRequests: 1e9, duration: 60_000 } }
}

const ok = async (): Promise<GatewayResponse> => ({ status: 200, headers: {}, body: undefined })

function handler (route: Record<string, unknown>): (greq: GatewayRequest) => Promise<GatewayResponse> {
  const target = { path: '/x', method: 'GET', route: { ...route, services: { s: { type: 'http', url: 'http://127.0.0.1:1' } } } } as unknown as RouteTarget
  const d = deps()
  const policies = [authJwt(target, d), rateLimit(target, d)].filter((p): p is Policy => p !== undefined)
  return compose(policies, ok)
}

function request (): GatewayRequest {
  return {
    id: 'r',
    traceparent: '',
    method: 'GET',
    route: '/x',
    path: '/x',
    rawQuery: '',
    params: {},
    headers: { authorization: `Bearer ${token}` },
    remoteAddress: '127.0.0.1',
    remotePort: 1,
    forwardedFor: '127.0.0.1',
    forwardedProto: 'http',
    forwardedHost: undefined,
    body: { kind: 'none' },
    signal: new AbortController().signal,
    log: silent
  } as unknown as GatewayRequest
}

async function measure (h: (greq: GatewayRequest) => Promise<GatewayResponse>): Promise<number> {
  const start = process.cpuUsage()
  for (let t = 0; t < TURNS; t++) {
    const turn: Array<Promise<GatewayResponse>> = []
    for (let i = 0; i < IN_FLIGHT; i++) turn.push(h(request()))
    for (const res of await Promise.all(turn)) if (res.status !== 200) throw new Error(`status ${res.status}`)
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) / (TURNS * IN_FLIGHT)
}

const handlers = Object.entries(routes).map(([name, route]) => [name, handler(route)] as const)
for (const [, h] of handlers) await measure(h) // warm-up
const samples = new Map<string, number[]>(handlers.map(([name]) => [name, []]))
for (let r = 0; r < ROUNDS; r++) for (const [name, h] of handlers) samples.get(name)!.push(await measure(h))
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(`CPU µs per request, median of ${ROUNDS} rounds of ${TURNS} turns × ${IN_FLIGHT} requests (min–max)`)
for (const [name, xs] of samples) console.log(`${name.padEnd(42)} ${median(xs).toFixed(2).padStart(6)}  (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`)
for (const c of closers) await c()
redis.disconnect()
