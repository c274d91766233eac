/**
 * The cache across gateway instances sharing one Redis (PRODUCT §4.3):
 * single-flight through the fill lease, the Redis tier, invalidation that
 * reaches every instance's in-process tier, stale-while-revalidate and
 * stale-if-error, Cache-Status. A private redis-server; each test has its
 * own key prefix.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { backend, config, gate, get, reply, startCached, until, type AfterHost, type Cached } from './cache-helpers.js'

let redis: RedisServer
let client: Redis

before(async () => {
  redis = await startRedis()
  client = new Redis(redis.url)
})
after(async () => {
  client.disconnect()
  await redis.stop()
})

/** `n` gateways on one Redis with one prefix, each ready (commands and subscription up). */
async function instances (t: AfterHost, n: number, backendUrl: string, routes: Record<string, Record<string, unknown>>, httpCaching?: unknown): Promise<{ prefix: string, gws: Cached[] }> {
  const prefix = `${redis.prefix}-${randomUUID().slice(0, 8)}`
  const gws: Cached[] = []
  for (let i = 0; i < n; i++) gws.push(await startCached(config(backendUrl, routes, { redis: { url: redis.url, prefix } }, httpCaching), t))
  for (const g of gws) assert.equal(await g.api.ready(10_000), true)
  return { prefix, gws }
}

test('100 concurrent misses for one key across three instances make exactly one upstream call', async (t) => {
  const N = 100
  let gws: Cached[] = []
  const b = await backend(t, async (_req, res, n) => {
    if (n === 1) {
      // Hold the only expected upstream answer until all 100 requests are inside the three gateways' cache policies.
      await until(() => gws.reduce((a, g) => a + g.api.stats().active, 0) === N ? true : undefined, 'all 100 requests in flight', 20_000, 5)
    }
    reply(res, 200, { n, payload: 'x'.repeat(100) })
  })
  gws = (await instances(t, 3, b.url, { '/hot': { caching: { ttlMs: 60_000 } } })).gws
  const all = await Promise.all(Array.from({ length: N }, async (_, i) => await get(gws[i % 3]!.url, '/hot')))
  assert.equal(b.requests.length, 1, 'one upstream call')
  assert.ok(all.every(r => r.status === 200 && r.json.n === 1))
  assert.equal(all.filter(r => r.cache.stored).length, 1)
  assert.equal(all.filter(r => r.cache.collapsed && r.cache.fwd === 'miss').length, N - 1)
  for (const g of gws) assert.equal(g.api.stats().active, 0)
})

test('an entry one instance stored is a Redis hit on another, then an in-process hit there', async (t) => {
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }))
  const { prefix, gws: [a, c] } = await instances(t, 2, b.url, { '/shared/:id': { caching: { ttlMs: 60_000 } } })
  const first = await get(a!.url, '/shared/7?x=1')
  assert.equal(first.cache.stored, true)
  const entryKey = `${prefix}:cache:entry:${first.cache.key!}`
  assert.equal(first.cache.key!.startsWith('/shared/7#'), true)
  assert.deepEqual(await client.hmget(entryKey, 'status', 'ttl', 'tags'), ['200', '60000', '[]'])
  assert.ok(await client.pttl(entryKey) > 0)
  const fromRedis = await get(c!.url, '/shared/7?x=1')
  assert.equal(fromRedis.cache.hit, true)
  assert.equal(fromRedis.cache.detail, 'redis')
  assert.equal(fromRedis.json.n, 1)
  const fromMemory = await get(c!.url, '/shared/7?x=1')
  assert.equal(fromMemory.cache.detail, 'memory')
  assert.equal(b.requests.length, 1)
})

test('a tag invalidation on one instance is seen by the next request on every instance', async (t) => {
  let version = 1
  const b = await backend(t, (req, res) => {
    const tag = req.url === '/products/1' ? 'product-1 catalogue' : 'product-2, catalogue'
    reply(res, 200, { version, url: req.url }, { 'cache-tag': tag })
  })
  const { prefix, gws } = await instances(t, 3, b.url, { '/products/:id': { caching: { ttlMs: 60_000 } } })
  for (const g of gws) {
    assert.equal((await get(g.url, '/products/1')).json.version, 1)
    assert.equal((await get(g.url, '/products/1')).cache.detail, 'memory')
    await get(g.url, '/products/2')
  }
  assert.equal(b.requests.length, 2)
  assert.equal(await client.zcard(`${prefix}:cache:tag:product-1`), 1)
  assert.equal(await client.zcard(`${prefix}:cache:tag:catalogue`), 2)

  version = 2
  assert.equal(await gws[1]!.api.invalidate({ tags: ['product-1'] }), 1)
  assert.equal(await client.exists(`${prefix}:cache:tag:product-1`), 0)
  for (const g of gws) {
    const r = await get(g.url, '/products/1')
    assert.equal(r.json.version, 2, 'no instance answers from its in-process copy')
    const other = await get(g.url, '/products/2')
    assert.equal(other.json.version, 1, 'an entry without the tag stays')
    assert.equal(other.cache.hit, true)
  }
  assert.equal(b.requests.length, 3, 'the refill is shared through Redis too')

  version = 3
  assert.equal(await gws[2]!.api.invalidate({ tags: ['catalogue'] }), 2)
  for (const g of gws) assert.equal((await get(g.url, '/products/2')).json.version, 3)
})

test('invalidation by entry key, by path, and by path prefix', async (t) => {
  let version = 1
  const b = await backend(t, (req, res) => reply(res, 200, { version, url: req.url }))
  const { prefix, gws: [a, c] } = await instances(t, 2, b.url, { '/p/:id': {}, '/q/:id': {} }, { ttlMs: 60_000 })
  const keys: Record<string, string> = {}
  for (const path of ['/p/1', '/p/1?v=2', '/p/2', '/p/3', '/q/1']) {
    keys[path] = (await get(a!.url, path)).cache.key!
    await get(c!.url, path)
  }
  version = 2
  const fresh = async (path: string): Promise<boolean> => {
    const [x, y] = [await get(a!.url, path), await get(c!.url, path)]
    return x.json.version === 2 && y.json.version === 2
  }
  assert.equal(await a!.api.invalidate({ keys: [keys['/p/1']!] }), 1, 'one exact entry')
  assert.equal(await fresh('/p/1'), true)
  assert.equal(await fresh('/p/1?v=2'), false, 'the other entry of that path stays')

  assert.equal(await c!.api.invalidate({ keys: ['/p/1'] }), 2, 'a path: all its entries')
  assert.equal(await fresh('/p/1?v=2'), true)

  assert.equal(await a!.api.invalidate({ prefix: '/p/' }), 3, '/p/1?v=2, /p/2 and /p/3')
  assert.equal(await fresh('/p/2'), true)
  assert.equal(await fresh('/p/3'), true)
  assert.equal(await fresh('/q/1'), false, 'outside the prefix')
  assert.equal((await client.keys(`${prefix}:cache:entry:/q/*`)).length, 1)

  assert.equal(await c!.api.invalidate({}), 0)
  await assert.rejects(a!.api.invalidate(null as never), TypeError)
})

test('stale-while-revalidate: every instance serves the stale entry while exactly one background refresh runs', async (t) => {
  const held = gate()
  let calls = 0
  const b = await backend(t, async (_req, res) => {
    const n = ++calls
    if (n > 1) await held.wait()
    reply(res, 200, { n }, n > 1 ? { 'cache-control': 'max-age=60' } : {})
  })
  const { gws: [a, c] } = await instances(t, 2, b.url, { '/swr': { caching: { ttlMs: 100, staleWhileRevalidateMs: 60_000 } } })
  assert.equal((await get(a!.url, '/swr')).cache.stored, true)
  assert.equal((await get(c!.url, '/swr')).cache.detail, 'redis')
  const stale = await until(async () => {
    const r = await get(a!.url, '/swr')
    return r.cache.detail === 'stale-while-revalidate' ? r : undefined
  }, 'the entry to go stale')
  assert.equal(stale.json.n, 1)
  assert.equal(stale.cache.hit, true)
  assert.ok(stale.cache.ttl! < 0)
  // A stale answer starts the one refresh (the backend holds it). Requests keep coming meanwhile: at the very
  // edge of the TTL, Redis's clock may still call the entry fresh, and then that request refreshes nothing.
  await until(async () => {
    if (calls === 2) return true
    assert.equal((await get(a!.url, '/swr')).json.n, 1)
    return undefined
  }, 'the background refresh to reach the backend')
  const burst = await Promise.all(Array.from({ length: 20 }, async (_, i) => await get((i % 2 === 0 ? a : c)!.url, '/swr')))
  assert.ok(burst.every(r => r.json.n === 1 && r.cache.detail === 'stale-while-revalidate'))
  held.open()
  for (const g of [a!, c!]) {
    const r = await until(async () => { const x = await get(g.url, '/swr'); return x.json.n === 2 ? x : undefined }, 'the refreshed entry')
    assert.equal(r.cache.hit, true)
  }
  assert.equal(calls, 2, 'one refresh for both instances')
  assert.equal(a!.api.stats().refreshes + c!.api.stats().refreshes, 1)
})

test('stale-if-error: a stale entry answers when the upstream fails or cannot be reached', async (t) => {
  let mode: 'ok' | 'fail' = 'ok'
  const b = await backend(t, (_req, res, n) => {
    if (mode === 'fail') reply(res, 503, { error: 'down' })
    else reply(res, 200, { n })
  })
  const { gws: [a, c] } = await instances(t, 2, b.url, { '/sie': { caching: { ttlMs: 100, staleIfErrorMs: 60_000 } } })
  assert.equal((await get(a!.url, '/sie')).json.n, 1)
  mode = 'fail'
  const saved = await until(async () => {
    const r = await get(a!.url, '/sie')
    return r.cache.detail === 'stale-if-error' ? r : undefined
  }, 'a stale-if-error answer')
  assert.equal(saved.status, 200)
  assert.equal(saved.json.n, 1)
  assert.equal(saved.cache.fwd, 'stale')
  assert.equal(saved.cache.fwdStatus, 503)
  assert.match(saved.headers.get('cache-status')!, /^Switchyard; fwd=stale; fwd-status=503; ttl=-\d+; key="\/sie#[\w-]+"; detail=stale-if-error$/)

  const viaRedis = await get(c!.url, '/sie')
  assert.equal(viaRedis.cache.detail, 'stale-if-error', 'another instance finds the stale entry in Redis')
  assert.equal(viaRedis.json.n, 1)

  await b.close()
  const unreachable = await get(a!.url, '/sie')
  assert.equal(unreachable.status, 200)
  assert.equal(unreachable.cache.fwdStatus, 502)
  assert.equal(unreachable.json.n, 1)
})

test('Cache-Status values (RFC 9211)', async (t) => {
  const held = gate()
  let calls = 0
  const b = await backend(t, async (req, res) => {
    calls++
    if (req.url === '/c' && calls > 0) await held.wait()
    reply(res, 200, { ok: true }, req.url === '/private' ? { 'cache-control': 'private' } : {})
  })
  const { gws: [a, c] } = await instances(t, 2, b.url, { '/s': {}, '/c': {}, '/private': {}, '/any': { method: 'ALL' } }, { ttlMs: 30_000 })
  const key = /key="\/s#[\w-]{22}"/
  const miss = (await get(a!.url, '/s')).cache.raw!
  assert.match(miss, /^Switchyard; fwd=miss; fwd-status=200; stored; ttl=30; key="\/s#[\w-]{22}"$/)
  assert.match((await get(a!.url, '/s')).cache.raw!, /^Switchyard; hit; ttl=(30|29); key="\/s#[\w-]{22}"; detail=memory$/)
  assert.match((await get(c!.url, '/s')).cache.raw!, /^Switchyard; hit; ttl=(30|29); key="\/s#[\w-]{22}"; detail=redis$/)
  assert.match(miss, key)
  assert.match((await get(a!.url, '/private')).cache.raw!, /^Switchyard; fwd=miss; fwd-status=200; key="\/private#[\w-]{22}"; detail=private$/)
  assert.equal((await get(a!.url, '/any', { method: 'DELETE' })).cache.raw, 'Switchyard; fwd=method')
  assert.equal((await get(a!.url, '/s', { headers: { range: 'bytes=0-1' } })).cache.raw, 'Switchyard; fwd=bypass; detail=range')
  const pending = [get(a!.url, '/c'), get(a!.url, '/c'), get(c!.url, '/c')]
  await until(() => a!.api.stats().active + c!.api.stats().active === 3 ? true : undefined, 'three requests in flight')
  held.open()
  const statuses = (await Promise.all(pending)).map(r => r.cache.raw!.replace(/; key="[^"]*"/, '').replace(/ttl=\d+/, 'ttl=N')).sort()
  assert.deepEqual(statuses, [
    'Switchyard; fwd=miss; collapsed; ttl=N',
    'Switchyard; fwd=miss; collapsed; ttl=N',
    'Switchyard; fwd=miss; fwd-status=200; stored; ttl=N'
  ])
})
