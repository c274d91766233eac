/**
 * PROTOCOL §3: a service whose replicas all stopped announcing → 503 at once;
 * a live one is listed; a service that never announced (Prism-era) is
 * "unknown" and still gets its requests.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { replicaKey, replicaSetKey } from '@switchyard/protocol'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { redisSettings } from '../../src/redis/connections.js'
import { startGateway } from './harness.js'

let redis: RedisServer
let client: Redis
before(async () => { redis = await startRedis(); client = new Redis(redis.url) })
after(async () => { client.disconnect(); await redis.stop() })

test('a stream service whose replicas are all gone answers 503 at once; live replicas are listed', async (t) => {
  const p = `${redis.prefix}:live`
  // One replica that announced and is gone (its key expired), for "orders"; one live replica for "billing".
  await client.sadd(replicaSetKey(p, 'orders'), 'r1')
  await client.sadd(replicaSetKey(p, 'billing'), 'b1')
  await client.set(replicaKey(p, 'billing', 'b1'), JSON.stringify({ pid: 1, transport: 'redis-stream' }), 'PX', 60_000)
  const { url, gw } = await startGateway({
    redis: { url: redis.url, prefix: p },
    http: { routes: { '/orders': { POST: { services: { orders: { type: 'redis-stream', timeout: 60_000 } } } }, '/billing': { GET: { services: { billing: { type: 'redis-stream', timeout: 300 } } } } } }
  })
  t.after(() => gw.close())
  const started = Date.now()
  const res = await fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  assert.equal(res.status, 503)
  assert.equal((await res.json() as { error: { code: string } }).error.code, 'GW_ERR_SERVICE_UNAVAILABLE')
  assert.ok(Date.now() - started < 30_000)
  const live = gw.liveReplicas()
  assert.equal(live.orders?.state, 'dead')
  assert.equal(live.billing?.state, 'live')
  assert.deepEqual(live.billing?.state === 'live' ? live.billing.replicas.map(r => r.replicaId) : [], ['b1'])
  // Nothing was appended for a dead service.
  assert.equal(await client.xlen(`${p}:stream:orders`), 0)
})

test('a service that never announced is unknown, not dead: its request is sent and times out normally', async (t) => {
  const p = `${redis.prefix}:unknown`
  const { url, gw } = await startGateway({ redis: { url: redis.url, prefix: p }, http: { routes: { '/legacy': { GET: { services: { legacy: { type: 'redis-stream', timeout: 300 } } } } } } })
  t.after(() => gw.close())
  const res = await fetch(`${url}/legacy`)
  assert.equal(res.status, 504)
  assert.equal(gw.liveReplicas().legacy?.state, 'unknown')
  assert.equal(await client.xlen(`${p}:stream:legacy`), 1)
})

test('Redis connection settings: url, host/port, Prism redis.options, REDIS_URL default', () => {
  const saved = process.env.REDIS_URL
  try {
    process.env.REDIS_URL = 'redis://10.0.0.1:7000'
    assert.equal(redisSettings(undefined).url, 'redis://10.0.0.1:7000')
    assert.equal(redisSettings({ url: 'redis://a:1' }).url, 'redis://a:1')
    const hp = redisSettings({ host: 'h', port: 6380 })
    assert.equal(hp.url, undefined)
    assert.equal(hp.options.host, 'h')
    assert.equal(hp.options.port, 6380)
    const prism = redisSettings({ options: { host: 'ph', port: 6390, password: 'pw' } })
    assert.equal(prism.url, undefined)
    assert.equal(prism.options.host, 'ph')
    assert.equal(prism.options.password, 'pw')
    assert.equal(redisSettings({ options: { url: 'redis://u:2' } }).url, 'redis://u:2')
  } finally {
    if (saved === undefined) delete process.env.REDIS_URL
    else process.env.REDIS_URL = saved
  }
})
