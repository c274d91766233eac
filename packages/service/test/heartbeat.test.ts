import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { replicaKey, replicaSetKey } from '@switchyard/protocol'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../../../testing/index.js'
import { cleanups, newPrefix, startService, waitFor } from './helpers.js'

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

test('heartbeat: replica keys with 3× interval TTL, set membership, DEL on close (member kept)', async (t) => {
  const defer = cleanups(t)
  const prefix = newPrefix()
  const client = new Redis(redis.url)
  defer(() => client.disconnect())
  const before = Date.now()
  const pubsub = await startService(defer, redis.url, { service: 'users', prefix, channel: `${prefix}:req:users`, heartbeatIntervalMs: 1000, handler: async () => ({}) })
  const streams = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => ({}) })

  // Present as soon as serve() resolves.
  const a = JSON.parse((await client.get(replicaKey(prefix, 'users', pubsub.replicaId)))!)
  assert.deepEqual({ ...a, startedAt: 0 }, { service: 'users', replicaId: pubsub.replicaId, transport: 'redis', channel: `${prefix}:req:users`, pid: process.pid, host: hostname(), startedAt: 0 })
  assert.ok(a.startedAt >= before && a.startedAt <= Date.now())
  const b = JSON.parse((await client.get(replicaKey(prefix, 'orders', streams.replicaId)))!)
  assert.equal(b.transport, 'redis-stream')
  assert.equal(b.stream, `${prefix}:stream:orders`)
  assert.equal(b.group, 'orders')

  const ttlA = await client.pttl(replicaKey(prefix, 'users', pubsub.replicaId))
  assert.ok(ttlA > 1000 && ttlA <= 3000, `ttl ${ttlA} is within 3 × 1000 ms`)
  const ttlB = await client.pttl(replicaKey(prefix, 'orders', streams.replicaId))
  assert.ok(ttlB > 2000 && ttlB <= 6000, `ttl ${ttlB} is within 3 × 2000 ms (the default interval)`)
  assert.deepEqual(await client.smembers(replicaSetKey(prefix, 'users')), [pubsub.replicaId])
  assert.deepEqual(await client.smembers(replicaSetKey(prefix, 'orders')), [streams.replicaId])

  // Refreshed every interval: the TTL goes back up.
  await client.pexpire(replicaKey(prefix, 'users', pubsub.replicaId), 60_000)
  await waitFor(async () => await client.pttl(replicaKey(prefix, 'users', pubsub.replicaId)) <= 3000, 'a heartbeat refresh')

  await pubsub.close()
  assert.equal(await client.exists(replicaKey(prefix, 'users', pubsub.replicaId)), 0)
  assert.deepEqual(await client.smembers(replicaSetKey(prefix, 'users')), [pubsub.replicaId])
})

test('heartbeat: two replicas of one service are both members', async (t) => {
  const defer = cleanups(t)
  const prefix = newPrefix()
  const client = new Redis(redis.url)
  defer(() => client.disconnect())
  const r1 = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => ({}) })
  const r2 = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, replicaId: 'fixed-id', handler: async () => ({}) })
  assert.equal(r2.replicaId, 'fixed-id')
  assert.deepEqual((await client.smembers(replicaSetKey(prefix, 'orders'))).sort(), [r1.replicaId, 'fixed-id'].sort())
  assert.equal(await client.exists(replicaKey(prefix, 'orders', r1.replicaId), replicaKey(prefix, 'orders', 'fixed-id')), 2)
})
