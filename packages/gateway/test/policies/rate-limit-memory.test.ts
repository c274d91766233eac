/**
 * PRODUCT §4.2 without Redis: the memory store through a gateway, the two
 * algorithms as pure logic on a fake clock, a claim key, IPv6 networks, and
 * start-time validation that names every bad path.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { GatewayError } from '@switchyard/protocol'
import { startBackend, json } from '../helpers/backend.js'
import { createGateway } from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/config/types.js'
import { Metrics } from '../../src/metrics.js'
import type { GatewayRequest, GatewayResponse } from '../../src/pipeline/types.js'
import { rateLimit } from '../../src/policies/rate-limit.js'
import { MemoryStore } from '../../src/policies/rate-limit/memory-store.js'
import { addressKey } from '../../src/policies/rate-limit/keys.js'
import type { LimitCheck } from '../../src/policies/rate-limit/store.js'
import type { PolicyDeps, RouteTarget } from '../../src/policies/types.js'
import { gateway, get, rateLimits } from './limits-helpers.js'

const silent = pino({ level: 'silent' })

test('without Redis the memory store limits, with the same headers', async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const { url, gw } = await gateway({
    http: { routes: { '/m': { GET: { rateLimiting: { limit: 2, windowMs: 60_000 }, services: { s: { type: 'http', url: backend.url } } } } } }
  } as unknown as GatewayConfig, t)
  assert.equal(rateLimits(gw).store, 'memory')
  const replies = [await get(`${url}/m`), await get(`${url}/m`), await get(`${url}/m`)]
  assert.deepEqual(replies.map(r => r.status), [200, 200, 429])
  assert.deepEqual(replies.map(r => r.headers.get('ratelimit-remaining')), ['1', '0', '0'])
  assert.equal(replies[2]!.headers.get('ratelimit-policy'), '2;w=60')
  assert.equal(replies[2]!.headers.get('retry-after'), '30') // GCRA: one request every 30 s
  assert.equal(backend.requests.length, 2)
  rateLimits(gw).resetLocal()
  assert.equal((await get(`${url}/m`)).status, 200)
})

function check (key: string, algorithm: LimitCheck['algorithm'], limit: number, windowMs: number): LimitCheck {
  return { key, algorithm, limit, windowMs }
}

test('GCRA: a burst of `limit`, then one request per window/limit', () => {
  let now = 1_000_000
  const store = new MemoryStore({ now: () => now })
  const c = [check('k', 'gcra', 3, 3000)]
  const seen = [store.consume(c), store.consume(c), store.consume(c), store.consume(c)]
  assert.deepEqual(seen.map(d => d.allowed), [true, true, true, false])
  assert.deepEqual(seen.map(d => d.results[0]!.remaining), [2, 1, 0, 0])
  assert.deepEqual(seen[3]!.results[0], { remaining: 0, resetMs: 3000, retryAfterMs: 1000 })
  now += 999
  assert.equal(store.consume(c).allowed, false)
  now += 1
  assert.equal(store.consume(c).allowed, true)
  assert.equal(store.consume(c).allowed, false)
  now += 3000 // a full window later the whole burst is back
  assert.deepEqual([1, 2, 3, 4].map(() => store.consume(c).allowed), [true, true, true, false])
})

test('GCRA stays exact for very high rates on an epoch clock', () => {
  // 1e9 per minute is one request every 6e-5 ms: below a double's step at ~1.7e12 ms (~2.4e-4).
  let now = 1_764_000_000_000
  const store = new MemoryStore({ now: () => now })
  const c = [check('k', 'gcra', 1_000_000_000, 60_000), check('m', 'gcra', 1_000_000, 1_000)]
  const seen = Array.from({ length: 100 }, () => store.consume(c))
  assert.deepEqual(seen.map(d => d.results[0]!.remaining), Array.from({ length: 100 }, (_, i) => 999_999_999 - i))
  assert.deepEqual(seen.map(d => d.results[1]!.remaining), Array.from({ length: 100 }, (_, i) => 999_999 - i))
  now += 1 // a millisecond refills 1000 of the million, more than was charged
  assert.equal(store.consume(c).results[1]!.remaining, 999_999)
})

test('sliding window: at most `limit` in any window; a slot frees when the oldest request leaves it', () => {
  let now = 5_000
  const store = new MemoryStore({ now: () => now })
  const c = [check('k', 'sliding-window', 2, 1000)]
  assert.equal(store.consume(c).allowed, true)
  now += 400
  assert.equal(store.consume(c).allowed, true)
  now += 100
  assert.deepEqual(store.consume(c), { allowed: false, results: [{ remaining: 0, resetMs: 900, retryAfterMs: 500 }] })
  now += 500 // the first request leaves the window (now - 1000 >= its time)
  assert.equal(store.consume(c).allowed, true)
  assert.equal(store.consume(c).allowed, false)
})

test('a refused request charges none of the other limits', () => {
  const store = new MemoryStore({ now: () => 0 })
  const tight = check('tight', 'gcra', 1, 60_000)
  const loose = check('loose', 'sliding-window', 5, 60_000)
  assert.equal(store.consume([tight, loose]).allowed, true)
  for (let i = 0; i < 3; i++) assert.equal(store.consume([tight, loose]).allowed, false)
  assert.equal(store.consume([loose]).results[0]!.remaining, 3) // charged twice in all: a and b
})

test('the memory store keeps at most maxKeys keys, dropping the least recently used', () => {
  const store = new MemoryStore({ now: () => 0, maxKeys: 2 })
  const two = (key: string): LimitCheck[] => [check(key, 'gcra', 2, 1000)]
  store.consume(two('a'))
  store.consume(two('b'))
  store.consume(two('a')) // a used last: b is now the least recently used
  store.consume(two('c')) // drops b
  assert.equal(store.size, 2)
  assert.equal(store.consume(two('a')).allowed, false) // kept: both of a's requests count
  assert.equal(store.consume(two('b')).results[0]!.remaining, 1) // forgotten: b starts afresh
})

test('IPv6 clients count per /64 by default; IPv4-mapped addresses as IPv4', () => {
  assert.equal(addressKey('2001:db8:abcd:12:1::5', 64), '2001:db8:abcd:12:0:0:0:0/64')
  assert.equal(addressKey('2001:db8:abcd:12:ffff::1', 64), addressKey('2001:db8:abcd:12::9', 64))
  assert.notEqual(addressKey('2001:db8:abcd:13::1', 64), addressKey('2001:db8:abcd:12::1', 64))
  assert.equal(addressKey('2001:db8:abcd:12:1::5', 128), '2001:db8:abcd:12:1::5')
  assert.equal(addressKey('::ffff:192.0.2.1', 64), '192.0.2.1')
  assert.equal(addressKey('192.0.2.1', 64), '192.0.2.1')
})

/** PolicyDeps for a policy built outside a gateway (memory state). */
function memoryDeps (config: Record<string, unknown>): PolicyDeps {
  return {
    log: silent,
    metrics: new Metrics(),
    config: config as unknown as GatewayConfig,
    instanceId: 'test',
    prefix: 'test',
    redis: () => undefined,
    onClose: () => {},
    provide: () => {}
  }
}

function fakeRequest (remoteAddress: string, claims?: Record<string, unknown>): GatewayRequest {
  const greq = { id: 'r', traceparent: '', method: 'GET', route: '/x', path: '/x', rawQuery: '', params: {}, headers: {} }
  const client = { remoteAddress, remotePort: 1, forwardedFor: remoteAddress, forwardedProto: 'http', forwardedHost: undefined }
  return { ...greq, ...client, body: { kind: 'none' }, claims, signal: new AbortController().signal, log: silent }
}

test('a claim key counts per verified claim (exact name or dot path); without claims, per client address', async () => {
  const ok: GatewayResponse = { status: 200, headers: {}, body: undefined }
  const build = (key: unknown): (greq: GatewayRequest) => Promise<GatewayResponse> => {
    const route = { services: { s: { type: 'http', url: 'http://127.0.0.1:1' } }, rateLimiting: { limit: 1, windowMs: 60_000, key } }
    const target = { path: '/x', method: 'GET', route } as unknown as RouteTarget
    return rateLimit(target, memoryDeps({ http: { routes: {} } }))!(async () => ({ ...ok, headers: {} }))
  }
  const bySub = build({ claim: 'sub' })
  assert.equal((await bySub(fakeRequest('192.0.2.1', { sub: 'alice' }))).status, 200)
  assert.equal((await bySub(fakeRequest('192.0.2.2', { sub: 'alice' }))).status, 429) // another address, same user
  assert.equal((await bySub(fakeRequest('192.0.2.1', { sub: 'bob' }))).status, 200)
  assert.equal((await bySub(fakeRequest('192.0.2.3'))).status, 200)
  assert.equal((await bySub(fakeRequest('192.0.2.3'))).status, 429)

  const byOrg = build({ claim: 'org.id' })
  assert.equal((await byOrg(fakeRequest('192.0.2.1', { org: { id: 7 } }))).status, 200)
  assert.equal((await byOrg(fakeRequest('192.0.2.9', { org: { id: 7 } }))).status, 429)
  assert.equal((await byOrg(fakeRequest('192.0.2.9', { org: { id: 8 } }))).status, 200)
})

test('per-address checks are made once per address; past the cache bound, counting still holds per address', async () => {
  const ok: GatewayResponse = { status: 200, headers: {}, body: undefined }
  const route = { services: { s: { type: 'http', url: 'http://127.0.0.1:1' } }, rateLimiting: [{ limit: 1, windowMs: 60_000 }, { limit: 10_052, windowMs: 60_000, key: 'route', algorithm: 'sliding-window' }] }
  const target = { path: '/x', method: 'GET', route } as unknown as RouteTarget
  const h = rateLimit(target, memoryDeps({ http: { routes: {} } }))!(async () => ({ ...ok, headers: {} }))
  assert.equal((await h(fakeRequest('192.0.2.1'))).status, 200)
  // More addresses than the route keeps checks for (10,000): the cache starts over on the way.
  for (let i = 0; i < 10_050; i++) {
    const res = await h(fakeRequest(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`))
    assert.equal(res.status, 200)
  }
  assert.equal((await h(fakeRequest('192.0.2.1'))).status, 429)
  assert.equal((await h(fakeRequest('10.0.0.7'))).status, 429)
  assert.equal((await h(fakeRequest('192.0.2.2'))).status, 200)
  // The route-wide limit counted every admitted request, 1 + 10,050 + 1, and no refused one.
  assert.equal((await h(fakeRequest('192.0.2.3'))).status, 429)
})

function startError (config: Record<string, unknown>): GatewayError {
  try {
    createGateway(config as unknown as GatewayConfig, { logger: silent })
  } catch (err) {
    assert.ok(err instanceof GatewayError)
    return err
  }
  assert.fail('the gateway started')
}

test('invalid options are refused at start, every problem named by its path', () => {
  const svc = { s: { type: 'http', url: 'http://127.0.0.1:1' } }
  const e = startError({
    http: {
      rateLimiting: { limit: 10 },
      routes: {
        '/x': { POST: { rateLimiting: [{ limit: 5, windowMs: 1000 }, { limit: 0, windowMs: 'soon', algorithm: 'leaky', key: { cookie: 'sid' }, onRedisDown: 'panic', extra: 1 }], services: svc } }
      }
    }
  })
  assert.equal(e.code, 'GW_ERR_CONFIG_INVALID')
  assert.match(e.message, /http\.rateLimiting\.windowMs: required/)
  const routeErrors = startError({
    http: { routes: { '/x': { POST: { rateLimiting: [{ limit: 5, windowMs: 1000 }, { limit: 0, windowMs: 'soon', algorithm: 'leaky', key: { cookie: 'sid' }, onRedisDown: 'panic', extra: 1 }], services: svc } } } }
  })
  for (const line of [
    'http.routes["/x"].POST.rateLimiting[1].limit: expected an integer >= 1',
    'http.routes["/x"].POST.rateLimiting[1].windowMs: expected an integer number of milliseconds >= 1',
    'http.routes["/x"].POST.rateLimiting[1].algorithm: expected "gcra" or "sliding-window"',
    'http.routes["/x"].POST.rateLimiting[1].key: expected "ip", "route"',
    'http.routes["/x"].POST.rateLimiting[1].onRedisDown: expected "failOpen", "failClosed" or "local"',
    'http.routes["/x"].POST.rateLimiting[1].extra: unknown key'
  ]) assert.ok(routeErrors.message.includes(line), `${line}\n---\n${routeErrors.message}`)

  assert.match(startError({ http: { routes: { '/x': { GET: { rateLimiting: { limit: 1, maxRequests: 2, windowMs: 1 }, services: svc } } } } }).message, /maxRequests: give `limit` or `maxRequests`, not both/)
  assert.match(startError({ http: { routes: { '/x': { GET: { rateLimiting: { type: 'fixed', maxRequests: 2, duration: 1 }, services: svc } } } } }).message, /type: expected "ip"/)
  assert.match(startError({
    http: {
      routes: {
        '/a': { GET: { rateLimiting: { limit: 1, windowMs: 1000, bucket: 'b' }, services: svc } },
        '/b': { GET: { rateLimiting: { limit: 2, windowMs: 1000, bucket: 'b' }, services: svc } }
      }
    }
  }).message, /http\.routes\["\/b"\]\.GET\.rateLimiting\.bucket: bucket "b" is also used at http\.routes\["\/a"\]\.GET\.rateLimiting/)
  const perService = startError({ http: { routes: { '/x': { GET: { services: { s: { ...svc.s, rateLimiting: { limit: 1, windowMs: 1 } } } } } } } })
  assert.equal(perService.code, 'GW_ERR_CONFIG_UNSUPPORTED')
  assert.match(perService.message, /http\.routes\["\/x"\]\.GET\.services\.s\.rateLimiting: rate limits apply to routes/)
})
