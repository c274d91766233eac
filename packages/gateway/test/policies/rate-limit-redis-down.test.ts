/**
 * PRODUCT §4.2 and §6.7: Redis killed mid-test. Each `onRedisDown` behaves as
 * docs/policies/rate-limiting.md says — failOpen admits, failClosed refuses
 * with 503, local limits per instance — and decisions go back to Redis by
 * themselves when it returns.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { freePort, startRedis } from '../../../../testing/index.js'
import { startBackend, json } from '../helpers/backend.js'
import type { GatewayConfig } from '../../src/config/types.js'
import { gateway, get, rateLimits, type Reply } from './limits-helpers.js'

const HOUR = 3_600_000

test('Redis killed: failOpen admits, failClosed answers 503, local limits in memory; all recover when Redis returns', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis()
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const svc = { s: { type: 'http', url: backend.url } }
  const limit = (onRedisDown?: string): Record<string, unknown> => ({ limit: 2, windowMs: HOUR, ...(onRedisDown !== undefined ? { onRedisDown } : {}) })
  const { url, gw } = await gateway({
    redis: { url: redis.url, prefix: redis.prefix },
    http: {
      routes: {
        '/open': { GET: { rateLimiting: limit('failOpen'), services: svc } },
        '/closed': { GET: { rateLimiting: limit('failClosed'), services: svc } },
        '/local': { GET: { rateLimiting: limit('local'), services: svc } },
        '/default': { GET: { rateLimiting: limit(), services: svc } }
      }
    }
  } as unknown as GatewayConfig, t)
  t.after(() => redis.stop()) // after the gateway has closed (t.after runs in order)
  const api = rateLimits(gw)
  assert.equal(await api.waitRedis(), true)
  const three = async (path: string): Promise<Reply[]> => [await get(url + path), await get(url + path), await get(url + path)]
  const statuses = (rs: Reply[]): number[] => rs.map(r => r.status)

  for (const path of ['/open', '/closed', '/local', '/default']) assert.deepEqual(statuses(await three(path)), [200, 200, 429], path)

  await redis.kill()
  const open = await three('/open')
  assert.deepEqual(statuses(open), [200, 200, 200])
  for (const r of open) assert.equal(r.headers.get('ratelimit-limit'), null) // nothing is known, nothing is claimed
  const closed = await three('/closed')
  assert.deepEqual(statuses(closed), [503, 503, 503])
  for (const r of closed) {
    assert.equal(JSON.parse(r.body).error.code, 'GW_ERR_REDIS_UNAVAILABLE')
    assert.equal(r.headers.get('retry-after'), '1')
  }
  // A fresh per-instance limiter: the same limit, counted here only.
  const local = await three('/local')
  assert.deepEqual(statuses(local), [200, 200, 429])
  assert.deepEqual(local.map(r => r.headers.get('ratelimit-remaining')), ['1', '0', '0'])
  assert.deepEqual(statuses(await three('/default')), [200, 200, 429]) // the default is "local"
  assert.equal(api.redisReady(), false)

  await redis.restart() // same port, empty dataset
  assert.equal(await api.waitRedis(), true)
  // Decisions are Redis's again: its empty dataset admits two of each, whatever happened meanwhile.
  for (const path of ['/open', '/closed', '/local', '/default']) assert.deepEqual(statuses(await three(path)), [200, 200, 429], path)
  const metrics = await gw.metrics.text()
  assert.match(metrics, /switchyard_rate_limit_decisions_total\{route="GET \/open",outcome="redis_down_open"\} 3/)
  assert.match(metrics, /switchyard_rate_limit_decisions_total\{route="GET \/closed",outcome="redis_down_closed"\} 3/)
  assert.match(metrics, /switchyard_rate_limit_decisions_total\{route="GET \/local",outcome="local_limited"\} 1/)
})

test('Redis down from the start: HTTP routes keep serving, limited locally', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const port = await freePort() // nothing listens there
  const { url, gw } = await gateway({
    redis: { url: `redis://127.0.0.1:${port}` },
    http: { routes: { '/x': { GET: { rateLimiting: { limit: 2, windowMs: HOUR }, services: { s: { type: 'http', url: backend.url } } } } } }
  } as unknown as GatewayConfig, t)
  assert.equal(rateLimits(gw).store, 'redis')
  const replies = [await get(`${url}/x`), await get(`${url}/x`), await get(`${url}/x`)]
  assert.deepEqual(replies.map(r => r.status), [200, 200, 429])
  assert.equal(replies[2]!.headers.get('ratelimit-policy'), '2;w=3600')
})

test('Redis stalled (connected, never answering): each decision gives up after its timeout and onRedisDown applies', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis()
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const svc = { s: { type: 'http', url: backend.url } }
  const { url, gw } = await gateway({
    redis: { url: redis.url, prefix: redis.prefix },
    http: {
      routes: {
        '/open': { GET: { rateLimiting: { limit: 2, windowMs: HOUR, onRedisDown: 'failOpen' }, services: svc } },
        '/closed': { GET: { rateLimiting: { limit: 2, windowMs: HOUR, onRedisDown: 'failClosed' }, services: svc } }
      }
    }
  } as unknown as GatewayConfig, t)
  t.after(() => redis.stop())
  const api = rateLimits(gw)
  assert.equal(await api.waitRedis(), true)
  assert.equal((await get(url + '/open')).status, 200)

  // SIGSTOP: the socket stays open and the connection "ready", but nothing is answered.
  // Without the per-command timeout these requests would wait forever.
  process.kill(redis.pid!, 'SIGSTOP')
  try {
    assert.equal(api.redisReady(), true)
    const open = await get(url + '/open')
    assert.equal(open.status, 200)
    assert.equal(open.headers.get('ratelimit-limit'), null)
    const closed = await get(url + '/closed')
    assert.equal(closed.status, 503)
    assert.equal(JSON.parse(closed.body).error.code, 'GW_ERR_REDIS_UNAVAILABLE')
  } finally {
    process.kill(redis.pid!, 'SIGCONT')
  }
  const metrics = await gw.metrics.text()
  assert.match(metrics, /switchyard_rate_limit_decisions_total\{route="GET \/open",outcome="redis_down_open"\} 1/)
  assert.match(metrics, /switchyard_rate_limit_decisions_total\{route="GET \/closed",outcome="redis_down_closed"\} 1/)
})
