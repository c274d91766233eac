/**
 * PRODUCT §4.2 and §8.3 against a private redis-server: a limit is exact
 * across gateway instances, holds against a spoofed X-Forwarded-For, and
 * combines several limits per route; keys by header, hook and route; Prism's
 * shape; the global limit, route overrides and shared buckets.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import { freePort, startRedis, type RedisServer } from '../../../../testing/index.js'
import { startBackend, json } from '../helpers/backend.js'
import type { GatewayConfig } from '../../src/config/types.js'
import { burst, countBy, gateway, get, rateLimits } from './limits-helpers.js'
import { sign } from './jwt-helpers.js'

const HOUR = 3_600_000

let redis: RedisServer
let n = 0
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

/** A config on the private Redis with a fresh key prefix. */
function onRedis (http: Record<string, unknown>, extra: Record<string, unknown> = {}): GatewayConfig {
  return { redis: { url: redis.url, prefix: `${redis.prefix}-${++n}` }, http, ...extra } as unknown as GatewayConfig
}

test('three instances on one Redis admit exactly N under 200 concurrent requests', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const config = onRedis({ routes: { '/limited': { GET: { rateLimiting: { limit: 50, windowMs: HOUR }, services: { s: { type: 'http', url: backend.url } } } } } })
  const gws = [await gateway(config, t), await gateway(config, t), await gateway(config, t)]
  for (const g of gws) assert.equal(await rateLimits(g.gw).waitRedis(), true)
  assert.equal(rateLimits(gws[0]!.gw).store, 'redis')

  const replies = await burst(200, i => ({ url: `${gws[i % 3]!.url}/limited` }))
  assert.deepEqual(countBy(replies), { 200: 50, 429: 150 })
  assert.equal(backend.requests.length, 50)
  // Every admitted request saw a different remaining count: one atomic decision each.
  const remaining = replies.filter(r => r.status === 200).map(r => Number(r.headers.get('ratelimit-remaining'))).sort((a, b) => a - b)
  assert.deepEqual(remaining, Array.from({ length: 50 }, (_, i) => i))
  for (const r of replies) {
    assert.equal(r.headers.get('ratelimit-limit'), '50')
    assert.equal(r.headers.get('ratelimit-policy'), '50;w=3600')
    assert.match(r.headers.get('ratelimit-reset') ?? '', /^\d+$/)
    if (r.status !== 429) continue
    assert.equal(r.headers.get('ratelimit-remaining'), '0')
    const retry = Number(r.headers.get('retry-after'))
    assert.ok(retry >= 1 && retry <= 72, `retry-after ${retry}`) // GCRA: one request every 72 s
    const body = JSON.parse(r.body) as { error: { code: string, retryAfterSeconds: number } }
    assert.equal(body.error.code, 'GW_ERR_RATE_LIMITED')
    assert.equal(body.error.retryAfterSeconds, retry)
  }
})

test('a spoofed X-Forwarded-For cannot dodge a per-address limit unless the sender is a trusted proxy', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const routes = { '/login': { POST: { rateLimiting: { limit: 3, windowMs: HOUR }, services: { s: { type: 'http', url: backend.url } } } } }
  const post = { method: 'POST', body: '{}' }

  const direct = await gateway(onRedis({ routes }), t)
  await rateLimits(direct.gw).waitRedis()
  const spoofed = await burst(6, i => ({ url: `${direct.url}/login`, headers: { 'x-forwarded-for': `198.51.100.${i}` }, init: post }))
  assert.deepEqual(countBy(spoofed), { 200: 3, 429: 3 })

  // Behind a trusted proxy (the test client is 127.0.0.1), X-Forwarded-For names the client.
  const proxied = await gateway(onRedis({ routes }, { server: { trustProxy: '127.0.0.1' } }), t)
  await rateLimits(proxied.gw).waitRedis()
  const distinct = await burst(6, i => ({ url: `${proxied.url}/login`, headers: { 'x-forwarded-for': `198.51.100.${i}` }, init: post }))
  assert.deepEqual(countBy(distinct), { 200: 6 })
  // One client behind the proxy, even prepending fake hops of its own, is counted once.
  const one = await burst(5, i => ({ url: `${proxied.url}/login`, headers: { 'x-forwarded-for': `10.${i}.0.1, 203.0.113.7` }, init: post }))
  assert.deepEqual(countBy(one), { 200: 3, 429: 2 })
})

test('several limits per route: all must admit, a refusal charges none, headers name the closest limit', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const { url, gw } = await gateway(onRedis({
    routes: {
      '/api': {
        GET: {
          rateLimiting: [
            { limit: 2, windowMs: HOUR, key: { header: 'x-api-key' } },
            { limit: 3, windowMs: HOUR, key: 'route', algorithm: 'sliding-window' }
          ],
          services: { s: { type: 'http', url: backend.url } }
        }
      }
    }
  }), t)
  await rateLimits(gw).waitRedis()
  const call = async (key: string): Promise<[number, string | null, string | null]> => {
    const r = await get(`${url}/api`, { 'x-api-key': key })
    assert.equal(r.headers.get('ratelimit-policy'), '2;w=3600, 3;w=3600')
    return [r.status, r.headers.get('ratelimit-limit'), r.headers.get('ratelimit-remaining')]
  }
  assert.deepEqual(await call('k1'), [200, '2', '1']) // key k1: 1 left; route: 2 left
  assert.deepEqual(await call('k1'), [200, '2', '0']) // k1: 0; route: 1
  assert.deepEqual(await call('k1'), [429, '2', '0']) // k1 refuses; the route limit is not charged
  assert.deepEqual(await call('k2'), [200, '3', '0']) // k2: 1; route: 0 — the route is now the closest
  assert.deepEqual(await call('k3'), [429, '3', '0']) // the route limit refuses
  assert.equal(backend.requests.length, 3)
})

test('a header key counts per header value; a request without it counts per client address', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const { url, gw } = await gateway(onRedis({
    routes: { '/h': { GET: { rateLimiting: { limit: 1, windowMs: HOUR, key: { header: 'X-Tenant' } }, services: { s: { type: 'http', url: backend.url } } } } }
  }), t)
  await rateLimits(gw).waitRedis()
  assert.equal((await get(`${url}/h`, { 'x-tenant': 'a' })).status, 200)
  assert.equal((await get(`${url}/h`, { 'x-tenant': 'a' })).status, 429)
  assert.equal((await get(`${url}/h`, { 'x-tenant': 'b' })).status, 200)
  assert.equal((await get(`${url}/h`)).status, 200)
  assert.equal((await get(`${url}/h`)).status, 429)
})

test('a hook key reads the body (a GraphQL operation name) and the body still reaches the service intact', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res, body) => json(res, 200, { sha: createHash('sha256').update(body).digest('hex') }))
  t.after(() => backend.close())
  const { url, gw } = await gateway(onRedis({
    routes: {
      '/graphql': {
        POST: {
          rateLimiting: {
            limit: 1,
            windowMs: HOUR,
            key: { hook: async (req: { readBody: () => Promise<unknown> }) => ((await req.readBody()) as { operationName?: string }).operationName }
          },
          services: { s: { type: 'http', url: backend.url } }
        }
      }
    }
  }), t)
  await rateLimits(gw).waitRedis()
  assert.equal(gw.routes()[0]!.mode, 'passthrough')
  const send = async (op: string): Promise<{ status: number, sha: string | undefined, body: string }> => {
    const body = JSON.stringify({ operationName: op, query: `query ${op} { a }`, pad: 'x'.repeat(20_000) })
    const r = await get(`${url}/graphql`, { 'content-type': 'application/json' }, { method: 'POST', body })
    return { status: r.status, sha: r.status === 200 ? (JSON.parse(r.body) as { sha: string }).sha : undefined, body }
  }
  const a = await send('GetCart')
  assert.equal(a.status, 200)
  assert.equal(a.sha, createHash('sha256').update(a.body).digest('hex'))
  assert.equal((await send('GetCart')).status, 429)
  assert.equal((await send('GetProducts')).status, 200)
  assert.equal(backend.requests.length, 2)
})

test('Prism\'s shape: type "ip", maxRequests within duration (a sliding window), errorStatus and errorBody', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const config = onRedis({
    routes: { '/p': { GET: { rateLimiting: { type: 'ip', maxRequests: 2, duration: HOUR, errorStatus: 503, errorBody: 'Slow down.' }, services: { s: { type: 'http', url: backend.url } } } } }
  })
  const { url, gw } = await gateway(config, t)
  await rateLimits(gw).waitRedis()
  assert.equal((await get(`${url}/p`)).status, 200)
  assert.equal((await get(`${url}/p`)).status, 200)
  const refused = await get(`${url}/p`)
  assert.equal(refused.status, 503)
  assert.equal(refused.body, 'Slow down.')
  assert.match(refused.headers.get('content-type') ?? '', /^text\/plain/)
  assert.ok(Number(refused.headers.get('retry-after')) > 3500) // the oldest request leaves the hour-long window
  // The state is a sliding log: a sorted set with the two admitted requests.
  const client = new Redis(redis.url)
  t.after(() => client.disconnect())
  const keys = await client.keys(`${(config.redis as { prefix: string }).prefix}:ratelimit:*`)
  assert.equal(keys.length, 1)
  assert.equal(await client.type(keys[0]!), 'zset')
  assert.equal(await client.zcard(keys[0]!), 2)
})

test('http.rateLimiting applies to every route that sets none; a route overrides it or turns it off; buckets share a counter', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const svc = { s: { type: 'http', url: backend.url } }
  const { url, gw } = await gateway(onRedis({
    rateLimiting: { limit: 1, windowMs: HOUR },
    routes: {
      '/a': { GET: { services: svc } },
      '/a2': { GET: { services: svc } },
      '/b': { GET: { rateLimiting: { limit: 2, windowMs: HOUR }, services: svc } },
      '/c': { GET: { rateLimiting: 'none', services: svc } },
      '/d': { GET: { rateLimiting: { limit: 2, windowMs: HOUR, bucket: 'shared' }, services: svc } },
      '/e': { GET: { rateLimiting: { limit: 2, windowMs: HOUR, bucket: 'shared' }, services: svc } }
    }
  }), t)
  await rateLimits(gw).waitRedis()
  const statuses = async (path: string, times: number): Promise<number[]> => {
    const out: number[] = []
    for (let i = 0; i < times; i++) out.push((await get(url + path)).status)
    return out
  }
  assert.deepEqual(await statuses('/a', 2), [200, 429])
  assert.deepEqual(await statuses('/a2', 2), [200, 429]) // each route counts on its own
  assert.deepEqual(await statuses('/b', 3), [200, 200, 429])
  assert.deepEqual(await statuses('/c', 3), [200, 200, 200])
  assert.equal((await get(`${url}/c`)).headers.get('ratelimit-limit'), null)
  assert.deepEqual([...await statuses('/d', 1), ...await statuses('/e', 2)], [200, 200, 429])
})

test('JWT auth + rate limit keep the passthrough fast path: RateLimit-* on the streamed answer (over the service\'s own) and on the gateway\'s errors', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'ratelimit-limit': '999', 'x-from': 'service' })
    res.end('{"ok":true}')
  })
  t.after(() => backend.close())
  const secret = new TextEncoder().encode('rate-limit-fast-path-secret-0123456789')
  const authentication = { type: 'jwt', key: 'rate-limit-fast-path-secret-0123456789' }
  const rateLimiting = { limit: 5, windowMs: HOUR }
  const { url, gw } = await gateway(onRedis({
    routes: {
      '/up': { GET: { authentication, rateLimiting, services: { s: { type: 'http', url: backend.url } } } },
      '/down': { GET: { authentication, rateLimiting, services: { s: { type: 'http', url: `http://127.0.0.1:${await freePort()}` } } } },
      '/cached': { GET: { rateLimiting, caching: { expiry: 60_000 }, services: { s: { type: 'http', url: backend.url } } } }
    }
  }), t)
  await rateLimits(gw).waitRedis()
  assert.deepEqual(gw.routes().map(r => [r.path, r.mode]), [['/up', 'passthrough'], ['/down', 'passthrough'], ['/cached', 'stream']])
  const auth = { authorization: `Bearer ${await sign({ sub: 'u1' }, secret, 'HS256')}` }

  const ok = await get(`${url}/up`, auth)
  assert.equal(ok.status, 200)
  assert.deepEqual(JSON.parse(ok.body), { ok: true })
  assert.equal(ok.headers.get('x-from'), 'service')
  assert.equal(ok.headers.get('ratelimit-limit'), '5') // the gateway's limit, not the service's header
  assert.equal(ok.headers.get('ratelimit-remaining'), '4')
  assert.match(ok.headers.get('x-request-id') ?? '', /.+/)

  const down = await get(`${url}/down`, auth)
  assert.equal(down.status, 502)
  assert.equal((JSON.parse(down.body) as { error: { code: string } }).error.code, 'GW_ERR_UPSTREAM_UNREACHABLE')
  assert.equal(down.headers.get('ratelimit-limit'), '5')
  assert.equal(down.headers.get('ratelimit-remaining'), '4')

  const refused = await get(`${url}/up`)
  assert.equal(refused.status, 401) // authentication runs first: no token, not counted
  assert.equal(refused.headers.get('ratelimit-limit'), null)

  // The cache answers hits itself; the limit's headers still go out with each answer, and are never stored with the entry.
  const first = await get(`${url}/cached`)
  const hit = await get(`${url}/cached`)
  assert.equal(first.headers.get('ratelimit-remaining'), '4')
  assert.equal(hit.headers.get('ratelimit-remaining'), '3')
  assert.match(hit.headers.get('cache-status') ?? '', /hit/)
})

test('a Redis that lost its scripts (SCRIPT FLUSH, a restart) is sent the script again: decisions stay on Redis', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const { url, gw } = await gateway(onRedis({ routes: { '/x': { GET: { rateLimiting: { limit: 5, windowMs: HOUR, onRedisDown: 'failOpen' }, services: { s: { type: 'http', url: backend.url } } } } } }), t)
  await rateLimits(gw).waitRedis()
  assert.equal((await get(`${url}/x`)).headers.get('ratelimit-remaining'), '4')
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  await admin.script('FLUSH')
  const after = await get(`${url}/x`)
  assert.equal(after.status, 200)
  assert.equal(after.headers.get('ratelimit-remaining'), '3') // decided by Redis (fail-open answers carry no RateLimit-*)
  assert.equal((await get(`${url}/x`)).headers.get('ratelimit-remaining'), '2')
})
