/**
 * Redis killed under the cache, then restarted (PRODUCT §6.7, documented in
 * docs/policies/caching.md "When Redis is down"): the in-process tier keeps
 * answering, misses go upstream and are kept in-process, invalidation says it
 * reached only this instance; after the restart each instance drops its
 * in-process tier (it may have missed invalidations) and the shared tier,
 * single-flight and invalidation work again.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { isGatewayError } from '@switchyard/protocol'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { backend, config, get, reply, startCached, until } from './cache-helpers.js'

let redis: RedisServer

before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

test('Redis killed mid-test: the in-process tier keeps working, misses go upstream; all recovers after the restart', async (t) => {
  let version = 1
  const b = await backend(t, (req, res) => reply(res, 200, { version, url: req.url }, { 'cache-tag': 'all' }))
  const prefix = `${redis.prefix}-${randomUUID().slice(0, 8)}`
  const cfg = config(b.url, { '/a': {}, '/b': {}, '/c': {} }, { redis: { url: redis.url, prefix } }, { ttlMs: 60_000 })
  const one = await startCached(cfg, t)
  const two = await startCached(cfg, t)
  assert.equal(await one.api.ready(10_000), true)
  assert.equal(await two.api.ready(10_000), true)
  assert.equal((await get(one.url, '/a')).cache.stored, true)
  assert.equal((await get(two.url, '/a')).cache.detail, 'redis')

  await redis.kill()
  await until(() => one.api.stats().redis === 'unavailable' && two.api.stats().redis === 'unavailable' ? true : undefined, 'both instances to see Redis gone')

  // What each instance holds in-process still answers.
  const held = await get(one.url, '/a')
  assert.equal(held.cache.hit, true)
  assert.equal(held.cache.detail, 'memory')
  assert.equal((await get(two.url, '/a')).cache.detail, 'memory')

  // A miss goes upstream (no lease: single-flight within the instance only) and is kept in-process.
  const missed = await get(one.url, '/b')
  assert.equal(missed.status, 200)
  assert.equal(missed.cache.fwd, 'miss')
  assert.equal(missed.cache.stored, true)
  assert.equal(missed.cache.detail, 'redis-unavailable')
  assert.equal((await get(one.url, '/b')).cache.detail, 'memory')
  assert.equal((await get(two.url, '/b')).cache.fwd, 'miss', 'nothing is shared while Redis is down')

  // Invalidation cannot reach the other instances: it clears this one and says so.
  await assert.rejects(one.api.invalidate({ tags: ['all'] }), (err: unknown) => isGatewayError(err) && err.code === 'GW_ERR_REDIS_UNAVAILABLE')
  assert.equal((await get(one.url, '/a')).cache.fwd, 'miss', 'this instance was cleared')
  assert.equal((await get(two.url, '/a')).cache.hit, true, 'the other one was not reached')

  await redis.restart()
  assert.equal(await one.api.ready(15_000), true)
  assert.equal(await two.api.ready(15_000), true)
  assert.equal(one.api.stats().redis, 'ready')

  // Each instance dropped its in-process tier on resubscribing: it may have missed invalidations.
  version = 2
  const refilled = await get(two.url, '/a')
  assert.equal(refilled.json.version, 2)
  assert.equal(refilled.cache.stored, true)
  assert.equal(refilled.cache.detail, undefined, 'stored in Redis again')
  assert.equal((await get(one.url, '/a')).cache.detail, 'redis')

  // Invalidation reaches every instance again.
  await get(one.url, '/c')
  assert.equal((await get(two.url, '/c')).cache.detail, 'redis')
  version = 3
  assert.ok(await one.api.invalidate({ tags: ['all'] }) >= 2)
  assert.equal((await get(two.url, '/a')).json.version, 3)
  assert.equal((await get(one.url, '/c')).json.version, 3)
  assert.equal((await get(two.url, '/c')).cache.detail, 'redis')
})

test('a gateway started while Redis is down serves and caches in-process, then uses Redis once it is up', async (t) => {
  const own = await startRedis()
  t.after(async () => { await own.stop() })
  const b = await backend(t, (_req, res, n) => reply(res, 200, { n }))
  await own.kill()
  const c = await startCached(config(b.url, { '/x': {} }, { redis: { url: own.url, prefix: own.prefix } }, { ttlMs: 60_000 }), t)
  assert.equal(await c.api.ready(200), false)
  const r1 = await get(c.url, '/x')
  assert.equal(r1.status, 200)
  assert.equal(r1.cache.detail, 'redis-unavailable')
  assert.equal((await get(c.url, '/x')).cache.detail, 'memory')
  await own.restart()
  assert.equal(await c.api.ready(15_000), true)
  // What it kept in-process was dropped when the subscription came up (it may have missed invalidations).
  const r2 = await get(c.url, '/x')
  assert.equal(r2.cache.fwd, 'miss')
  assert.equal(r2.cache.stored, true)
  assert.equal(r2.cache.detail, undefined, 'stored in Redis')
})
