import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { replicaKey } from '@switchyard/protocol'
import { startRedis } from '../../../testing/index.js'
import { FakeGateway, cleanups, deferred, newPrefix, startService, waitFor } from './helpers.js'

test('Redis killed and restarted: pub/sub and streams services recover and answer again', async (t) => {
  const defer = cleanups(t)
  const redis = await startRedis()
  defer(() => redis.stop())
  const prefix = newPrefix()
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())
  const channel = `${prefix}:req:users`
  const stream = `${prefix}:stream:orders`
  const users = await startService(defer, redis.url, { service: 'users', prefix, channel, handler: async (_r, ctx) => ({ body: { users: ctx.id } }) })
  const orders = await startService(defer, redis.url, { service: 'orders', prefix, stream, handler: async (_r, ctx) => ({ body: { orders: ctx.id } }) })

  await gw.publish(channel, gw.request('before-1'))
  await gw.xadd(stream, gw.request('before-2'))
  assert.deepEqual((await gw.reply('before-1', 'users')).response.body, { users: 'before-1' })
  assert.deepEqual((await gw.reply('before-2', 'orders')).response.body, { orders: 'before-2' })

  await redis.kill()
  // Requests the gateway appends right after the restart, before the replica re-created its group.
  const regrouped = once(orders, 'group.created')
  await redis.restart()
  await gw.resubscribed()
  await gw.xadd(stream, gw.request('after-2'))
  const [group] = await regrouped
  assert.equal(group.stream, stream)
  assert.deepEqual((await gw.reply('after-2', 'orders')).response.body, { orders: 'after-2' })

  // Pub/sub: ioredis subscribes again by itself.
  await waitFor(async () => {
    const [, n] = await gw.command.pubsub('NUMSUB', channel) as [string, number]
    return Number(n) === 1
  }, 'the service to subscribe again')
  assert.equal(await gw.publish(channel, gw.request('after-1')), 1)
  assert.deepEqual((await gw.reply('after-1', 'users')).response.body, { users: 'after-1' })

  // Liveness keys come back on reconnect, without waiting for the next interval.
  await waitFor(async () => await gw.command.exists(replicaKey(prefix, 'users', users.replicaId), replicaKey(prefix, 'orders', orders.replicaId)) === 2, 'the replica keys')
})

test('Redis down at start: serve() waits for it, then works', async (t) => {
  const defer = cleanups(t)
  const redis = await startRedis()
  defer(() => redis.stop())
  await redis.kill()
  const prefix = newPrefix()
  const serving = startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => ({ body: 'late start' }) })
  await redis.restart()
  const svc = await serving
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())
  await gw.xadd(svc.stream!, gw.request('x'))
  assert.equal((await gw.reply('x', 'orders')).response.body, 'late start')
})

test('close() while Redis is down still returns: unsendable completions are abandoned, not awaited forever', async (t) => {
  const defer = cleanups(t)
  const redis = await startRedis()
  defer(() => redis.stop())
  const prefix = newPrefix()
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())
  const entered = deferred()
  const release = deferred()
  const users = await startService(defer, redis.url, { service: 'users', prefix, channel: `${prefix}:req:users`, handler: async () => ({}) })
  const orders = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream: true,
    closeTimeoutMs: 100,
    handler: async () => { entered.resolve(); await release.promise; return { body: 'cannot be sent' } }
  })
  await gw.xadd(orders.stream!, gw.request('stuck'))
  await entered.promise
  await redis.kill()
  release.resolve() // its SET/PUBLISH/XACK now wait for a Redis that is gone
  await Promise.all([users.close(), orders.close()])
  assert.deepEqual(gw.repliesFor('stuck'), [])
})
