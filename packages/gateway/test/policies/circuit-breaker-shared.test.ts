/**
 * PRODUCT §4.4 "state may be shared through Redis so that every instance
 * opens together", on a private redis-server: one instance's failures open
 * the breaker on the others; half-open sends one probe for the whole cluster;
 * with Redis killed each instance decides locally, and sharing resumes when
 * Redis returns.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import type { GatewayConfig } from '../../src/config/types.js'
import { breakerEvent, breakerIn, breakers, burst, countBy, FlakyBackend, gateway, get, probeWhileHeld, type Started } from './limits-helpers.js'

function sharedConfig (redis: RedisServer, backendUrl: string, breaker: Record<string, unknown>): GatewayConfig {
  return {
    redis: { url: redis.url, prefix: redis.prefix },
    http: {
      circuitBreaker: breaker,
      routes: { '/b': { GET: { services: { backend: { type: 'http', url: backendUrl, mergeField: 'data' } } } } }
    }
  } as unknown as GatewayConfig
}

async function cluster (n: number, config: GatewayConfig, t: Parameters<typeof gateway>[1]): Promise<Started[]> {
  const out: Started[] = []
  for (let i = 0; i < n; i++) out.push(await gateway(config, t))
  for (const g of out) assert.equal(await breakers(g.gw).waitShared(), true)
  return out
}

test('one instance\'s failures open the breaker on every instance, and the others stop calling the service', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis()
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  await backend.down()
  const [a, b, c] = await cluster(3, sharedConfig(redis, backend.url, { consecutiveFailures: 2, openMs: 60_000, shared: true }), t)
  t.after(() => redis.stop()) // after the gateways closed
  assert.equal(breakers(a!.gw).states().backend!.shared, true)
  const heard = [breakerEvent(b!.gw, 'backend', 'circuit.opened'), breakerEvent(c!.gw, 'backend', 'circuit.opened')]

  await burst(2, () => ({ url: `${a!.url}/b` })) // only instance a sees the failures
  assert.equal(breakers(a!.gw).states().backend!.state, 'open')
  for (const e of await Promise.all(heard)) assert.equal(e.source, 'shared')
  await backend.up()
  for (const g of [b!, c!]) {
    const r = await get(`${g.url}/b`)
    assert.equal(r.status, 503)
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'GW_ERR_CIRCUIT_OPEN')
    const retry = Number(r.headers.get('retry-after'))
    assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`)
  }
  assert.equal(backend.hits, 0)
})

test('half-open sends one probe for the whole cluster; its success closes the breaker on every instance', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis()
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  await backend.down()
  const gws = await cluster(3, sharedConfig(redis, backend.url, { consecutiveFailures: 2, openMs: 500, shared: true }), t)
  t.after(() => redis.stop())
  const opened = gws.map(g => breakerEvent(g.gw, 'backend', 'circuit.opened'))
  await burst(2, () => ({ url: `${gws[0]!.url}/b` }))
  await Promise.all(opened)
  await backend.up()
  for (const g of gws) await breakerIn(g.gw, 'backend', 'half-open')

  const { replies, hitsWhileHeld } = await probeWhileHeld(backend, gws.map(g => `${g.url}/b`), 30)
  assert.equal(hitsWhileHeld, 1) // one probe, whichever instance sent it
  assert.deepEqual(countBy(replies), { 200: 1, 503: replies.length - 1 })
  for (const g of gws) await breakerIn(g.gw, 'backend', 'closed')
  assert.deepEqual(countBy(await burst(9, i => ({ url: `${gws[i % 3]!.url}/b` }))), { 200: 9 })
})

test('Redis killed: each instance\'s breaker decides locally; sharing resumes when Redis returns', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis()
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  // state: "redis" shares breakers without `shared: true`.
  const config = { ...sharedConfig(redis, backend.url, { consecutiveFailures: 2, openMs: 500 }), state: 'redis' } as GatewayConfig
  const [a, b] = await cluster(2, config, t)
  t.after(() => redis.stop())
  assert.equal(breakers(b!.gw).states().backend!.shared, true)

  await redis.kill()
  await backend.down()
  const localOpen = breakerEvent(a!.gw, 'backend', 'circuit.opened')
  await burst(2, () => ({ url: `${a!.url}/b` }))
  assert.equal((await localOpen).source, 'local') // a's own failures, decided without Redis
  const onB = await get(`${b!.url}/b`)
  assert.equal(onB.status, 502) // b did not hear of it: it still calls the (down) service
  assert.equal(breakers(b!.gw).states().backend!.state, 'closed')

  // The local breaker goes on by itself: half-open, one probe, closed.
  await backend.up()
  await breakerIn(a!.gw, 'backend', 'half-open')
  assert.equal((await get(`${a!.url}/b`)).status, 200)
  assert.equal(breakers(a!.gw).states().backend!.state, 'closed')

  await redis.restart()
  for (const g of [a!, b!]) assert.equal(await breakers(g.gw).waitShared(), true)
  backend.status = 500
  const heard = breakerEvent(b!.gw, 'backend', 'circuit.opened')
  await burst(2, () => ({ url: `${a!.url}/b` }))
  assert.equal((await heard).source, 'shared') // b opens with a again
})
