/**
 * Response caching without Redis (PRODUCT §4.3): the in-process tier, the key,
 * what is stored and for how long, Cache-Status, tags kept from clients,
 * single-flight within an instance, config checks. Redis-backed behaviour is
 * in cache-redis.test.ts and cache-redis-down.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { isGatewayError } from '@switchyard/protocol'
import { createGateway } from '../../src/gateway.js'
import type { GatewayConfig, RouteConfigT } from '../../src/config/types.js'
import { Metrics } from '../../src/metrics.js'
import { cache } from '../../src/policies/cache.js'
import type { PolicyDeps } from '../../src/policies/types.js'
import type { GatewayRequest } from '../../src/pipeline/types.js'
import { entryId, sortedQuery } from '../../src/policies/cache/key.js'
import { resolveSettings } from '../../src/policies/cache/options.js'
import { parseCacheControl, requestDirectives } from '../../src/policies/cache/http-semantics.js'
import { backend, config, gate, get, reply, startCached, until, type Cached, type Got } from './cache-helpers.js'

test('a repeated GET is answered from the in-process tier, with Age and Cache-Status', async (t) => {
  const b = await backend(t, (req, res, n) => reply(res, 200, { n, url: req.url }))
  const c = await startCached(config(b.url, { '/items': { caching: { ttlMs: 60_000 } } }), t)
  const first = await get(c.url, '/items')
  assert.equal(first.status, 200)
  assert.deepEqual(first.json, { n: 1, url: '/items' })
  assert.equal(first.cache.fwd, 'miss')
  assert.equal(first.cache.fwdStatus, 200)
  assert.equal(first.cache.stored, true)
  assert.equal(first.cache.ttl, 60)
  assert.equal(first.headers.get('age'), null)
  const second = await get(c.url, '/items')
  assert.deepEqual(second.json, { n: 1, url: '/items' })
  assert.equal(second.cache.hit, true)
  assert.equal(second.cache.detail, 'memory')
  assert.equal(second.cache.key, first.cache.key)
  assert.match(second.headers.get('age') ?? '', /^\d+$/)
  assert.equal(second.headers.get('content-type'), 'application/json')
  assert.equal(second.headers.get('content-length'), String(Buffer.byteLength(second.text)))
  assert.equal(b.requests.length, 1)
  const stats = c.api.stats()
  assert.equal(stats.outcomes.hit, 1)
  assert.equal(stats.outcomes.miss, 1)
  assert.equal(stats.redis, 'off')
  assert.equal(stats.memory.entries, 1)
  // Counted per route as plain numbers and reported at each scrape: what was reported is not added again.
  const metrics = await c.gw.metrics.text()
  assert.match(metrics, /switchyard_cache_requests_total\{route="\/items",outcome="hit"\} 1\n/)
  assert.match(metrics, /switchyard_cache_requests_total\{route="\/items",outcome="miss"\} 1\n/)
  await get(c.url, '/items')
  await get(c.url, '/items')
  assert.match(await c.gw.metrics.text(), /switchyard_cache_requests_total\{route="\/items",outcome="hit"\} 3\n/)
  assert.equal(c.api.stats().outcomes.hit, 3)
})

test('keys tell params, query and varyBy headers apart; query order does not matter', async (t) => {
  const b = await backend(t, (req, res, n) => reply(res, 200, { n, url: req.url, lang: req.headers['accept-language'] ?? null }))
  const c = await startCached(config(b.url, { '/items/:id': { caching: { ttlMs: 60_000, varyBy: { headers: ['Accept-Language'] } } } }), t)
  const one = await get(c.url, '/items/1')
  const two = await get(c.url, '/items/2')
  assert.notEqual(one.json.n, two.json.n, 'params are in the key (Prism ignored them)')
  assert.notEqual(one.cache.key, two.cache.key)
  assert.equal((await get(c.url, '/items/1')).json.n, one.json.n)

  const q1 = await get(c.url, '/items/1?a=1&b=2')
  assert.notEqual(q1.json.n, one.json.n, 'the query is in the key (Prism ignored it)')
  const q2 = await get(c.url, '/items/1?b=2&a=1')
  assert.equal(q2.json.n, q1.json.n, 'sorted query: the same entry')
  assert.equal(q2.cache.hit, true)
  assert.notEqual((await get(c.url, '/items/1?a=1&b=3')).json.n, q1.json.n)

  const en = await get(c.url, '/items/1', { headers: { 'accept-language': 'en' } })
  const fr = await get(c.url, '/items/1', { headers: { 'accept-language': 'fr' } })
  assert.deepEqual([en.json.lang, fr.json.lang], ['en', 'fr'])
  assert.notEqual(en.json.n, fr.json.n)
  const en2 = await get(c.url, '/items/1', { headers: { 'accept-language': 'en' } })
  assert.equal(en2.json.n, en.json.n)
  assert.equal(en2.cache.hit, true)
  assert.equal(b.requests.length, 6)
})

test('varyBy.query keeps only the listed parameters in the key', async (t) => {
  const b = await backend(t, (req, res, n) => reply(res, 200, { n, url: req.url }))
  const c = await startCached(config(b.url, { '/list': { caching: { ttlMs: 60_000, varyBy: { query: ['page'] } } } }), t)
  const a = await get(c.url, '/list?page=1&utm_source=x')
  const same = await get(c.url, '/list?utm_source=y&page=1')
  assert.equal(same.json.n, a.json.n)
  assert.equal(same.cache.hit, true)
  const other = await get(c.url, '/list?page=2&utm_source=x')
  assert.notEqual(other.json.n, a.json.n)
  assert.equal(b.requests.length, 2)
})

test('Set-Cookie, no-store, private, no-cache, Vary, and non-2xx answers are not stored; Cache-Status says why', async (t) => {
  const cases: Record<string, [number, Record<string, string | string[]>, string]> = {
    '/cookie': [200, { 'set-cookie': 'sid=1; Path=/' }, 'set-cookie'],
    '/no-store': [200, { 'cache-control': 'no-store' }, 'no-store'],
    '/private': [200, { 'cache-control': 'private, max-age=60' }, 'private'],
    '/no-cache': [200, { 'cache-control': 'no-cache' }, 'no-cache'],
    '/vary': [200, { vary: 'Accept-Encoding' }, 'vary'],
    '/zero': [200, { 'cache-control': 'max-age=0' }, 'no-ttl'],
    '/missing': [404, {}, 'status'],
    '/broken': [500, {}, 'status'],
    '/partial': [206, {}, 'status']
  }
  const b = await backend(t, (req, res, n) => {
    const [status, headers] = cases[new URL(req.url!, 'http://x').pathname]!
    reply(res, status, { n }, headers)
  })
  const routes: Record<string, Record<string, unknown>> = {}
  for (const p of Object.keys(cases)) routes[p] = {}
  const c = await startCached(config(b.url, routes, {}, { ttlMs: 60_000 }), t)
  for (const [path, [status, , reason]] of Object.entries(cases)) {
    const r1 = await get(c.url, path)
    const r2 = await get(c.url, path)
    assert.equal(r1.cache.stored, false, path)
    assert.equal(r2.cache.hit, false, path)
    assert.equal(r2.cache.fwd, 'miss', path)
    assert.equal(r2.cache.detail, reason, path)
    assert.notEqual(r1.json?.n, r2.json?.n, `${path} went upstream twice`)
    if (status === 200) assert.equal(r2.status, 200)
  }
  assert.equal(b.requests.length, Object.keys(cases).length * 2)
  assert.equal(c.api.stats().memory.entries, 0)
})

test('TTL: s-maxage, else max-age, else the configured ttlMs (Prism expiry); stale-* directives are read', async (t) => {
  const headers: Record<string, string> = {
    '/both': 's-maxage=7, max-age=5',
    '/max-age': 'public, max-age=5',
    '/swr': 'max-age=5, stale-while-revalidate=30, stale-if-error=60'
  }
  const b = await backend(t, (req, res) => {
    const h = headers[req.url!]
    reply(res, 200, { ok: true }, h === undefined ? {} : { 'cache-control': h })
  })
  const c = await startCached(config(b.url, { '/both': {}, '/max-age': {}, '/swr': {}, '/config': {}, '/prism': { caching: { expiry: 3000 } } }, {}, { ttlMs: 60_000 }), t)
  assert.equal((await get(c.url, '/both')).cache.ttl, 7)
  assert.equal((await get(c.url, '/max-age')).cache.ttl, 5)
  assert.equal((await get(c.url, '/config')).cache.ttl, 60)
  // A route's Prism `expiry` beats the http-level ttlMs: each level's ttlMs/expiry is one setting.
  assert.equal((await get(c.url, '/prism')).cache.ttl, 3)
  assert.equal((await get(c.url, '/swr')).cache.stored, true)
})

test('Prism `expiry` alone sets the TTL', async (t) => {
  const b = await backend(t, (_req, res) => reply(res, 200, {}))
  const c = await startCached(config(b.url, { '/p': { caching: { expiry: 3000 } } }), t)
  assert.equal((await get(c.url, '/p')).cache.ttl, 3)
})

test('Cache-Tag and Surrogate-Key never reach the client, stored or not', async (t) => {
  const b = await backend(t, (req, res) => reply(res, 200, {}, { 'cache-tag': 'a b', 'surrogate-key': 'c', ...(req.url === '/private' ? { 'cache-control': 'private' } : {}) }))
  const c = await startCached(config(b.url, { '/tagged': {}, '/private': {} }, {}, { ttlMs: 60_000 }), t)
  for (const path of ['/tagged', '/tagged', '/private']) {
    const r = await get(c.url, path)
    assert.equal(r.headers.get('cache-tag'), null, path)
    assert.equal(r.headers.get('surrogate-key'), null, path)
  }
})

test('HEAD reads and fills the GET entry (upstream gets a GET)', async (t) => {
  const b = await backend(t, (req, res, n) => reply(res, 200, { n, method: req.method }))
  const c = await startCached(config(b.url, { '/h': {}, '/g': {} }, {}, { ttlMs: 60_000 }), t)
  const head = await get(c.url, '/h', { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(b.requests[0]!.method, 'GET')
  const afterHead = await get(c.url, '/h')
  assert.equal(afterHead.cache.hit, true)
  assert.deepEqual(afterHead.json, { n: 1, method: 'GET' })

  await get(c.url, '/g')
  const head2 = await get(c.url, '/g', { method: 'HEAD' })
  assert.equal(head2.cache.hit, true)
  assert.equal(head2.text, '')
  assert.equal(b.requests.length, 2)
})

test('a request with Cache-Control: no-cache refetches and refreshes the entry; requestNoCache "ignore" turns that off', async (t) => {
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }))
  const c = await startCached(config(b.url, { '/r': { caching: { ttlMs: 60_000 } }, '/i': { caching: { ttlMs: 60_000, requestNoCache: 'ignore' } } }), t)
  assert.equal((await get(c.url, '/r')).json.n, 1)
  const re = await get(c.url, '/r', { headers: { 'cache-control': 'no-cache' } })
  assert.equal(re.json.n, 2)
  assert.equal(re.cache.fwd, 'request')
  assert.equal(re.cache.stored, true)
  const after = await get(c.url, '/r')
  assert.equal(after.json.n, 2)
  assert.equal(after.cache.hit, true)
  const pragma = await get(c.url, '/r', { headers: { pragma: 'no-cache' } })
  assert.equal(pragma.json.n, 3)

  const i1 = await get(c.url, '/i')
  const i2 = await get(c.url, '/i', { headers: { 'cache-control': 'no-cache' } })
  assert.equal(i2.json.n, i1.json.n)
  assert.equal(i2.cache.hit, true)
})

test('a request with Cache-Control: no-store is answered but its response is not stored', async (t) => {
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }))
  const c = await startCached(config(b.url, { '/x': { caching: { ttlMs: 60_000 } } }), t)
  const r = await get(c.url, '/x', { headers: { 'cache-control': 'no-store' } })
  assert.equal(r.cache.detail, 'request-no-store')
  assert.equal((await get(c.url, '/x')).cache.stored, true)
})

test('an Authorization header keeps the answer out unless the key varies by identity or the response says public', async (t) => {
  const b = await backend(t, (req, res, n) => reply(res, 200, { n }, req.url === '/public' ? { 'cache-control': 'public' } : {}))
  const c = await startCached(config(b.url, {
    '/plain': {},
    '/public': {},
    '/per-user': { caching: { ttlMs: 60_000, varyBy: { headers: ['authorization'] } } }
  }, {}, { ttlMs: 60_000 }), t)
  const auth = { headers: { authorization: 'Bearer a' } }
  assert.equal((await get(c.url, '/plain', auth)).cache.detail, 'authorization')
  assert.equal((await get(c.url, '/public', auth)).cache.stored, true)
  assert.equal((await get(c.url, '/per-user', auth)).cache.stored, true)
  const other = await get(c.url, '/per-user', { headers: { authorization: 'Bearer b' } })
  assert.equal(other.cache.stored, true, 'another identity is another entry')
})

test('concurrent misses for one key make one upstream call within an instance', async (t) => {
  const gw: { c?: Cached } = {}
  const N = 20
  const b = await backend(t, async (_req, res, n) => {
    // Hold the first answer until every request is inside the cache policy.
    if (n === 1) await until(() => gw.c!.api.stats().active === N ? true : undefined, 'all requests in flight')
    reply(res, 200, { n })
  })
  const c = gw.c = await startCached(config(b.url, { '/hot': { caching: { ttlMs: 60_000 } } }), t)
  const all = await Promise.all(Array.from({ length: N }, async () => await get(c.url, '/hot')))
  assert.equal(b.requests.length, 1)
  assert.ok(all.every(r => r.status === 200 && r.json.n === 1))
  assert.equal(all.filter(r => r.cache.stored).length, 1)
  assert.equal(all.filter(r => r.cache.collapsed).length, N - 1)
})

test('requests joined to an answer that cannot be shared go upstream themselves (never share a Set-Cookie)', async (t) => {
  const gw: { c?: Cached } = {}
  const N = 5
  const b = await backend(t, async (_req, res, n) => {
    if (n === 1) await until(() => gw.c!.api.stats().active === N ? true : undefined, 'all requests in flight')
    reply(res, 200, { n }, { 'set-cookie': `sid=${n}` })
  })
  const c = gw.c = await startCached(config(b.url, { '/me': { caching: { ttlMs: 60_000 } } }), t)
  const all = await Promise.all(Array.from({ length: N }, async () => await get(c.url, '/me')))
  assert.equal(b.requests.length, N)
  assert.equal(new Set(all.map(r => r.headers.get('set-cookie'))).size, N)
})

test('a body bigger than maxSize streams through unstored', async (t) => {
  const big = Buffer.alloc(64 * 1024, 'x')
  const b = await backend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }) // chunked: the size is only known by reading
    res.write(big.subarray(0, 1000))
    res.end(big.subarray(1000))
  })
  const c = await startCached(config(b.url, { '/big': { caching: { ttlMs: 60_000, maxSize: 4096 } } }), t)
  const r = await fetch(c.url + '/big')
  const body = Buffer.from(await r.arrayBuffer()) // fetch: byte-exact body
  assert.equal(body.length, big.length)
  assert.ok(body.equals(big))
  assert.match(r.headers.get('cache-status') ?? '', /detail=too-big/)
  await get(c.url, '/big')
  assert.equal(b.requests.length, 2)
})

test('cached POST (methods: ["POST"]) keys by the body, or by varyBy.body fields', async (t) => {
  const b = await backend(t, (req, res, n) => reply(res, 200, { n, method: req.method }))
  const c = await startCached(config(b.url, {
    '/search': { method: 'POST', caching: { ttlMs: 60_000, methods: ['POST'] } },
    '/graphql': { method: 'POST', caching: { ttlMs: 60_000, methods: ['POST'], varyBy: { body: ['query'] } } }
  }), t)
  const post = async (path: string, body: unknown): Promise<Got> =>
    await get(c.url, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const a = await post('/search', { q: 'a' })
  assert.equal((await post('/search', { q: 'a' })).json.n, a.json.n)
  assert.notEqual((await post('/search', { q: 'b' })).json.n, a.json.n)
  const g = await post('/graphql', { query: '{ x }', traceId: 1 })
  assert.equal((await post('/graphql', { query: '{ x }', traceId: 2 })).json.n, g.json.n)
  assert.notEqual((await post('/graphql', { query: '{ y }' })).json.n, g.json.n)
  assert.equal(b.requests.length, 4)
  assert.equal(b.requests[0]!.body.toString(), '{"q":"a"}', 'the body still reaches the service')
})

test('a method the route does not cache passes through (ALL route)', async (t) => {
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }, { 'cache-tag': 'x' }))
  const c = await startCached(config(b.url, { '/any': { method: 'ALL', caching: { ttlMs: 60_000 } } }), t)
  const p1 = await get(c.url, '/any', { method: 'POST', body: 'x' })
  const p2 = await get(c.url, '/any', { method: 'POST', body: 'x' })
  assert.equal(p1.cache.fwd, 'method')
  assert.notEqual(p1.json.n, p2.json.n)
  assert.equal(p1.headers.get('cache-tag'), null)
  assert.equal((await get(c.url, '/any')).cache.stored, true)
})

test('caching: false (or "none") on a route turns the http-level cache off there', async (t) => {
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }))
  const c = await startCached(config(b.url, { '/on': {}, '/off': { caching: false }, '/none': { caching: 'none' } }, {}, { ttlMs: 60_000 }), t)
  assert.equal((await get(c.url, '/on')).cache.stored, true)
  for (const p of ['/off', '/none']) {
    const r = await get(c.url, p)
    assert.equal(r.headers.get('cache-status'), null, p)
  }
})

test('an entry expires after its TTL (bounded poll, no sleep)', async (t) => {
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }))
  const c = await startCached(config(b.url, { '/short': { caching: { ttlMs: 100 } } }), t)
  assert.equal((await get(c.url, '/short')).json.n, 1)
  const later = await until(async () => { const r = await get(c.url, '/short'); return r.json.n > 1 ? r : undefined }, 'the entry to expire')
  assert.equal(later.cache.fwd, 'miss')
})

test('stale-while-revalidate and stale-if-error work in the in-process tier alone', async (t) => {
  let failing = false
  const held = gate()
  let refreshes = 0
  const b = await backend(t, async (req, res, n) => {
    if (req.url === '/sie' && failing) { reply(res, 503, { down: true }); return }
    if (req.url === '/swr' && n > 1) {
      refreshes++
      await held.wait()
      reply(res, 200, { n }, { 'cache-control': 'max-age=60' })
      return
    }
    reply(res, 200, { n })
  })
  const c = await startCached(config(b.url, {
    '/swr': { caching: { ttlMs: 50, staleWhileRevalidateMs: 60_000 } },
    '/sie': { caching: { ttlMs: 50, staleIfErrorMs: 60_000 } }
  }), t)
  const v1 = await get(c.url, '/swr')
  const stale = await until(async () => { const r = await get(c.url, '/swr'); return r.cache.detail === 'stale-while-revalidate' ? r : undefined }, 'a stale answer')
  assert.equal(stale.json.n, v1.json.n)
  assert.ok(stale.cache.hit)
  assert.ok(stale.cache.ttl! < 0)
  await until(() => refreshes === 1 ? true : undefined, 'the background refresh to reach the backend')
  for (let i = 0; i < 5; i++) assert.equal((await get(c.url, '/swr')).cache.detail, 'stale-while-revalidate')
  held.open()
  const fresh = await until(async () => { const r = await get(c.url, '/swr'); return r.json.n !== v1.json.n ? r : undefined }, 'the refreshed entry')
  assert.equal(fresh.cache.hit, true)
  assert.equal(refreshes, 1, 'one background refresh')
  assert.equal(c.api.stats().refreshes, 1)

  const s1 = await get(c.url, '/sie')
  failing = true
  const saved = await until(async () => { const r = await get(c.url, '/sie'); return r.cache.detail === 'stale-if-error' ? r : undefined }, 'a stale-if-error answer')
  assert.equal(saved.status, 200)
  assert.equal(saved.json.n, s1.json.n)
  assert.equal(saved.cache.fwd, 'stale')
  assert.equal(saved.cache.fwdStatus, 503)
})

test('config problems are refused at start, each with its path', () => {
  const make = (cfg: unknown): unknown => {
    try {
      createGateway(cfg as GatewayConfig, { logger: pino({ level: 'silent' }) })
      return undefined
    } catch (err) {
      return err
    }
  }
  const err = make({
    http: {
      caching: { ttlMs: -1 },
      routes: { '/x': { GET: { caching: { expiry: 'soon', varyBy: { headers: 'x' }, nope: 1, memory: { maxBytes: -2 }, methods: ['FETCH'] }, services: { s: { type: 'http', url: 'http://127.0.0.1:1/' } } } } }
    }
  })
  assert.ok(isGatewayError(err))
  assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
  for (const p of ['http.caching.ttlMs', 'http.routes["/x"].GET.caching.expiry', 'http.routes["/x"].GET.caching.varyBy.headers', 'http.routes["/x"].GET.caching.nope: unknown key',
    'http.routes["/x"].GET.caching.memory.maxBytes', 'http.routes["/x"].GET.caching.methods[0]']) {
    assert.ok(err.message.includes(p), `${p} in\n${err.message}`)
  }
  const perService = make({ http: { routes: { '/x': { GET: { services: { s: { type: 'http', url: 'http://127.0.0.1:1/', caching: { ttlMs: 1 } } } } } } } })
  assert.ok(isGatewayError(perService))
  assert.match(perService.message, /services\.s\.caching: caching is set on a route or in http/)
})

test('the key: HEAD shares GET, varyBy.claims tells identities apart, params and host count', () => {
  const settings = resolveSettings({ ttlMs: 1000, varyBy: { claims: ['sub', 'org.id'] } }, undefined, ['http', 'routes', '/u/:id', 'GET'])!
  const req = (over: Partial<GatewayRequest>): GatewayRequest => gatewayRequest({ route: '/u/:id', path: '/u/1', params: { id: '1' }, ...over })
  const base = entryId(req({ claims: { sub: 'alice', org: { id: 1 } } }), settings, undefined)
  assert.match(base, /^\/u\/1#[\w-]{22}$/)
  assert.equal(entryId(req({ method: 'HEAD', claims: { sub: 'alice', org: { id: 1 } } }), settings, undefined), base)
  assert.notEqual(entryId(req({ claims: { sub: 'bob', org: { id: 1 } } }), settings, undefined), base)
  assert.notEqual(entryId(req({ claims: { sub: 'alice', org: { id: 2 } } }), settings, undefined), base)
  assert.notEqual(entryId(req({ claims: undefined }), settings, undefined), base)
  assert.notEqual(entryId(req({ claims: { sub: 'alice', org: { id: 1 } }, headers: { host: 'b.test' } }), settings, undefined), base)
  assert.notEqual(entryId(req({ claims: { sub: 'alice', org: { id: 1 } }, path: '/u/2', params: { id: '2' } }), settings, undefined).split('#')[0], '/u/1')
  assert.equal(sortedQuery('b=2&a=1&a=0', undefined), 'a=0&a=1&b=2')
  assert.equal(sortedQuery('b=2&a=1', ['a']), 'a=1')
})

test('the key of method, host, path and query alone: the query in any order, per route settings, past the memo\'s bound', () => {
  const plain = resolveSettings({ ttlMs: 1000 }, undefined, ['http', 'routes', '/p', 'GET'])!
  const byA = resolveSettings({ ttlMs: 1000, varyBy: { query: ['a'] } }, undefined, ['http', 'routes', '/p', 'GET'])!
  const req = (rawQuery: string, over: Partial<GatewayRequest> = {}): GatewayRequest => gatewayRequest({ route: '/p', path: '/p', rawQuery, ...over })
  const base = entryId(req('a=1&b=2'), plain, undefined)
  assert.match(base, /^\/p#[\w-]{22}$/)
  assert.equal(entryId(req('b=2&a=1'), plain, undefined), base, 'the query sorted')
  assert.equal(entryId(req('a=1&b=2', { method: 'HEAD' }), plain, undefined), base)
  assert.notEqual(entryId(req('a=1&b=3'), plain, undefined), base)
  assert.notEqual(entryId(req('a=1&b=2', { headers: { host: 'other.test' } }), plain, undefined), base)
  assert.equal(entryId(req('a=1&b=2', { headers: { host: 'GATEWAY.TEST' } }), plain, undefined), entryId(req('a=1&b=2', { headers: { host: 'gateway.test' } }), plain, undefined))
  // The same request line under other settings: its own id, not the first route's.
  assert.equal(entryId(req('a=1&b=2'), byA, undefined), entryId(req('a=1&b=9'), byA, undefined))
  assert.notEqual(entryId(req('a=1&b=2'), byA, undefined), base)
  assert.notEqual(entryId(req('a=1&b=9'), plain, undefined), entryId(req('a=1&b=2'), plain, undefined))
  // Past 10,000 request lines the memo starts over; ids stay the same.
  const first = entryId(req('n=0'), plain, undefined)
  for (let i = 1; i <= 10_001; i++) entryId(req(`n=${i}`), plain, undefined)
  assert.equal(entryId(req('n=0'), plain, undefined), first)
  assert.equal(entryId(req('b=2&a=1'), plain, undefined), base)
})

test('Cache-Control parsing', () => {
  const cc = parseCacheControl('public, max-age=60, s-maxage="120", stale-while-revalidate=30, private="set-cookie, x", no-cache')
  assert.equal(cc.public, true)
  assert.equal(cc.maxAge, 60)
  assert.equal(cc.sMaxAge, 120)
  assert.equal(cc.staleWhileRevalidate, 30)
  assert.equal(cc.private, true)
  assert.equal(cc.noCache, true)
  assert.equal(parseCacheControl('max-age=abc').maxAge, undefined)
  assert.deepEqual(requestDirectives({ 'cache-control': 'max-age=0' }), { revalidate: true, noStore: false })
  assert.deepEqual(requestDirectives({ pragma: 'no-cache' }), { revalidate: true, noStore: false })
  assert.deepEqual(requestDirectives({ 'cache-control': 'no-store' }), { revalidate: false, noStore: true })
})

test('the policy\'s probe answers a fresh in-process hit synchronously, as the policy would, and leaves everything else to it', async () => {
  const routes = { '/p': { GET: { caching: { ttlMs: 60_000 }, services: { s: { type: 'http', url: 'http://127.0.0.1:9/p' } } } } }
  const deps: PolicyDeps = {
    log: pino({ level: 'silent' }),
    metrics: new Metrics(),
    config: { http: { routes } } as unknown as GatewayConfig,
    instanceId: 'probe-test',
    prefix: 'probe-test',
    redis: () => undefined,
    onClose: () => {},
    provide: () => {}
  }
  const policy = cache({ path: '/p', method: 'GET', route: routes['/p'].GET as unknown as RouteConfigT }, deps)!
  assert.equal(typeof policy.probe, 'function')
  let calls = 0
  const handler = policy(async () => {
    calls++
    return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"n":1}') }
  })
  const req = (over: Partial<GatewayRequest> = {}): GatewayRequest => gatewayRequest({ route: '/p', path: '/p', ...over })

  assert.equal(policy.probe!(req()), undefined) // a miss: the policy fetches and stores
  const miss = await handler(req())
  assert.equal(calls, 1)
  assert.match(String(miss.headers['cache-status']), /fwd=miss; fwd-status=200; stored/)

  const hit = policy.probe!(req())
  assert.ok(hit !== undefined)
  const viaPolicy = await handler(req())
  assert.equal(calls, 1)
  assert.deepEqual({ ...hit, headers: { ...hit.headers } }, { ...viaPolicy, headers: { ...viaPolicy.headers } })
  assert.match(String(hit.headers['cache-status']), /^Switchyard; hit; ttl=\d+; key="\/p#[\w-]{22}"; detail=memory$/)
  assert.equal(hit.headers.age, '0')
  assert.deepEqual(hit.body, Buffer.from('{"n":1}'))
  // Each answer is its own copy: what the front door adds to one is not in the next.
  hit.headers['x-request-id'] = 'one'
  assert.equal(policy.probe!(req())!.headers['x-request-id'], undefined)

  // Not for the probe: a revalidation, a range, another key, a method not cached.
  assert.equal(policy.probe!(req({ headers: { host: 'a.test', 'cache-control': 'no-cache' } })), undefined)
  assert.equal(policy.probe!(req({ headers: { host: 'a.test', range: 'bytes=0-1' } })), undefined)
  assert.equal(policy.probe!(req({ rawQuery: 'x=1' })), undefined)
  assert.equal(policy.probe!(req({ method: 'POST' })), undefined)
})

/** A GET request for /p on host a.test, as the pipeline sees it, with `over` on top. */
function gatewayRequest (over: Partial<GatewayRequest>): GatewayRequest {
  return {
    id: 'r',
    traceparent: '',
    method: 'GET',
    route: '/p',
    path: '/p',
    rawQuery: '',
    params: {},
    headers: { host: 'a.test' },
    remoteAddress: '',
    remotePort: 0,
    forwardedFor: '',
    forwardedProto: 'http',
    forwardedHost: undefined,
    body: { kind: 'none' },
    signal: new AbortController().signal,
    log: pino({ level: 'silent' }),
    ...over
  }
}
