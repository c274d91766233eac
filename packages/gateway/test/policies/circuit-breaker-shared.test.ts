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
import { breakerIn, breakers, burst, countBy, FlakyBackend, gateway, get, type Started } from './limits-helpers.js'

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

test('one instance\'s failures open the breaker on every instance; one probe for the cluster closes it everywhere', async (t) => {
  const redis = await startRedis()
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  await backend.down()
  const [a, b, c] = await cluster(3, sharedConfig(redis, backend.url, { consecutiveFailures: 2, openMs: 1500, shared: true }), t)
  t.after(() => redis.stop()) // after the gateways closed
  assert.equal(breakers(a!.gw).states().backend!.shared, true)

  await burst(2, () => ({ url: `${a!.url}/b` })) // only instance a sees the failures
  await breakerIn(a!.gw, 'backend', 'open')
  await breakerIn(b!.gw, 'backend', 'open')
  await breakerIn(c!.gw, 'backend', 'open')
  await backend.up()
  for (const g of [b!, c!]) {
    const r = await get(`${g.url}/b`)
    assert.equal(r.status, 503)
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'GW_ERR_CIRCUIT_OPEN')
    assert.ok(Number(r.headers.get('retry-after')) >= 1)
  }
  assert.equal(backend.hits, 0)

  for (const g of [a!, b!, c!]) await breakerIn(g.gw, 'backend', 'half-open')
  backend.hold()
  const arrived = backend.arrival()
  let settled = 0
  let othersDone!: () => void
  const done = new Promise<void>(resolve => { othersDone = resolve })
  const all = Array.from({ length: 30 }, async (_, i) => {
    const r = await get(`${[a!, b!, c!][i % 3]!.url}/b`)
    if (++settled === 29) othersDone()
    return r
  })
  await arrived
  await done // every other request was refused while the one probe is held at the backend
  assert.equal(backend.hits, 1)
  backend.release()
  assert.deepEqual(countBy(await Promise.all(all)), { 200: 1, 503: 29 })
  for (const g of [a!, b!, c!]) await breakerIn(g.gw, 'backend', 'closed')
  assert.deepEqual(countBy(await burst(9, i => ({ url: `${[a!, b!, c!][i % 3]!.url}/b` }))), { 200: 9 })
})

test('Redis killed: each instance\'s breaker decides locally; sharing resumes when Redis returns', async (t) => {
  const redis = await startRedis()
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  // state: "redis" shares breakers without `shared: true`.
  const config = { ...sharedConfig(redis, backend.url, { consecutiveFailures: 2, openMs: 1000 }), state: 'redis' } as GatewayConfig
  const [a, b] = await cluster(2, config, t)
  t.after(() => redis.stop())
  assert.equal(breakers(b!.gw).states().backend!.shared, true)

  await redis.kill()
  await backend.down()
  await burst(2, () => ({ url: `${a!.url}/b` }))
  await breakerIn(a!.gw, 'backend', 'open') // a's own failures, decided locally
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
  await burst(2, () => ({ url: `${a!.url}/b` }))
  await breakerIn(a!.gw, 'backend', 'open')
  await breakerIn(b!.gw, 'backend', 'open') // shared again
  const hits = backend.hits
  assert.equal((await get(`${b!.url}/b`)).status, 503)
  assert.equal(backend.hits, hits)
})
