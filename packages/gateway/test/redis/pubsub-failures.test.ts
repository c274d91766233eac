/**
 * PRODUCT §3.2, §9.1, §9.3: garbage replies never crash; no subscriber → 503
 * at once; a 500 ms timeout → 504 on its own timer; Redis killed and restarted
 * → Redis routes 503 while it is down, HTTP routes unaffected, then recovery.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { eventually, httpBackend, json, startGateway } from './harness.js'

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

/** A plain-client echo service; `silent` makes it swallow requests (never reply). */
async function echoService (url: string, channel: string, service: string, opts: { silent?: boolean, garbageFirst?: boolean } = {}): Promise<{ stop: () => void, seen: () => number }> {
  const sub = new Redis(url, { retryStrategy: () => 50 })
  const pub = new Redis(url, { retryStrategy: () => 50 })
  sub.on('error', () => {}); pub.on('error', () => {})
  let seen = 0
  await sub.subscribe(channel)
  sub.on('message', (_c: string, raw: string) => {
    const msg = JSON.parse(raw)
    if (msg.type !== 'request') return
    seen++
    if (opts.silent === true) return
    if (opts.garbageFirst === true) {
      // Everything a broken or hostile publisher could put on the response channel.
      for (const g of ['not json {', '42', 'null', '[]', '{"id":1}', JSON.stringify({ id: msg.id }), JSON.stringify({ id: 'nobody', service, response: {} }),
        JSON.stringify({ id: msg.id, service: 'someone-else', response: {} }), JSON.stringify({ id: msg.id, service, response: 'x' })]) pub.publish(msg.responseChannel, g)
    }
    pub.publish(msg.responseChannel, JSON.stringify({ id: msg.id, service, response: { status: 200, body: { ok: true, path: msg.request.path } } }))
  })
  return { stop: () => { sub.disconnect(); pub.disconnect() }, seen: () => seen }
}

test('garbage on the response channel is dropped and counted; the gateway keeps serving', async (t) => {
  const p = redis.prefix + ':garbage'
  const svc = await echoService(redis.url, `${p}:in`, 'svc', { garbageFirst: true })
  t.after(svc.stop)
  const { url, gw } = await startGateway({ redis: { url: redis.url, prefix: p }, http: { routes: { '/g': { GET: { services: { svc: { type: 'redis', requestChannel: `${p}:in`, timeout: 5000 } } } } } } })
  t.after(() => gw.close())
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${url}/g`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { ok: true, path: '/g' })
  }
  const metrics = await gw.metrics.text()
  assert.match(metrics, /switchyard_redis_replies_total\{outcome="malformed"\} (\d+)/)
  assert.ok(Number(/outcome="malformed"\} (\d+)/.exec(metrics)![1]) >= 3 * 6)
  assert.ok(Number(/outcome="unmatched"\} (\d+)/.exec(metrics)![1]) >= 3 * 2)
})

test('no subscriber → 503 well before the timeout', async (t) => {
  const p = redis.prefix + ':nosub'
  const { url, gw } = await startGateway({ redis: { url: redis.url, prefix: p }, http: { routes: { '/n': { GET: { services: { svc: { type: 'redis', requestChannel: `${p}:nobody`, timeout: 60_000 } } } } } } })
  t.after(() => gw.close())
  const started = Date.now()
  const res = await fetch(`${url}/n`)
  assert.equal(res.status, 503)
  const body = await res.json() as { error: { code: string, service: string } }
  assert.equal(body.error.code, 'GW_ERR_SERVICE_UNAVAILABLE')
  assert.equal(body.error.service, 'svc')
  // Prism waited the whole timeout (here a minute); anything near it is the old behaviour.
  assert.ok(Date.now() - started < 30_000)
})

test('a 500 ms timeout answers 504 on its own timer, not after a multi-second sweep', async (t) => {
  const p = redis.prefix + ':timeout'
  const svc = await echoService(redis.url, `${p}:in`, 'svc', { silent: true })
  t.after(svc.stop)
  const { url, gw } = await startGateway({ redis: { url: redis.url, prefix: p }, http: { routes: { '/t': { GET: { services: { svc: { type: 'redis', requestChannel: `${p}:in`, timeout: 500 } } } } } } })
  t.after(() => gw.close())
  const started = Date.now()
  const res = await fetch(`${url}/t`)
  const elapsed = Date.now() - started
  assert.equal(res.status, 504)
  assert.equal((await res.json() as { error: { code: string } }).error.code, 'GW_ERR_UPSTREAM_TIMEOUT')
  assert.equal(svc.seen(), 1)
  // Prism's sweep ran every 10 s; a per-request timer answers long before that.
  assert.ok(elapsed < 5000, `took ${elapsed} ms`)
})

test('Redis killed and restarted: Redis routes 503 while down, HTTP routes keep working, then recover', async (t) => {
  const own = await startRedis()
  t.after(() => own.stop())
  const p = own.prefix
  let svc = await echoService(own.url, `${p}:in`, 'svc')
  t.after(() => svc.stop())
  const backend = await httpBackend((_req, _body, res) => json(res, 200, { http: true }))
  t.after(backend.close)
  const { url, gw } = await startGateway({
    redis: { url: own.url, prefix: p },
    http: { routes: { '/r': { GET: { services: { svc: { type: 'redis', requestChannel: `${p}:in`, timeout: 2000 } } } }, '/h': { GET: { services: { h: { type: 'http', url: backend.url } } } } } }
  })
  t.after(() => gw.close())
  assert.equal((await fetch(`${url}/r`)).status, 200)

  await own.kill()
  const down = await fetch(`${url}/r`)
  assert.equal(down.status, 503)
  assert.equal((await down.json() as { error: { code: string } }).error.code, 'GW_ERR_REDIS_UNAVAILABLE')
  const h = await fetch(`${url}/h`)
  assert.equal(h.status, 200)
  assert.deepEqual(await h.json(), { http: true })

  svc.stop()
  await own.restart()
  svc = await echoService(own.url, `${p}:in`, 'svc')
  // The gateway reconnects by itself; poll (bounded) until the Redis route answers again.
  const res = await eventually(async () => { const r = await fetch(`${url}/r`); return r.status === 200 ? r : undefined })
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { ok: true, path: '/r' })
})
