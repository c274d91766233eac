import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { DEFAULT_PREFIX, STREAM_FIELD, deadLetterKey, doneKey, streamKey } from '@switchyard/protocol'
import { startRedis, type RedisServer } from '../../../testing/index.js'
import type { RequestContext } from '../src/index.js'
import { FakeGateway, cleanups, deferred, httpRequest, newPrefix, startService, waitFor } from './helpers.js'

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

async function setup (t: Parameters<typeof cleanups>[0]): Promise<{ defer: (fn: () => unknown) => void, gw: FakeGateway, prefix: string }> {
  const defer = cleanups(t)
  const prefix = newPrefix()
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())
  return { defer, gw, prefix }
}

async function pendingCount (gw: FakeGateway, stream: string, group: string): Promise<number> {
  const [count] = await gw.command.xpending(stream, group) as [number, ...unknown[]]
  return Number(count)
}

/** The XACK follows the PUBLISH in the same pipeline: wait for it rather than race it. */
async function nothingPending (gw: FakeGateway, stream: string, group: string): Promise<void> {
  await waitFor(async () => await pendingCount(gw, stream, group) === 0, 'no pending entries')
}

test('streams: `stream: true` reads <prefix>:stream:<service> in group <service>', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const svc = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async (req, ctx) => ({ status: 201, body: { path: req.path, entryId: ctx.entryId, deliveries: ctx.deliveries } }) })
  assert.equal(svc.stream, `${prefix}:stream:orders`)
  assert.equal(svc.stream, streamKey(prefix, 'orders'))
  assert.equal(svc.group, 'orders')
  assert.equal(svc.consumer, svc.replicaId)
  const completed = once(svc, 'request.completed')
  const entryId = await gw.xadd(svc.stream!, gw.request('o-1'))
  const reply = await gw.reply('o-1', 'orders')
  assert.deepEqual(reply.response, { status: 201, body: { path: '/things/7', entryId, deliveries: 1 } })
  // Acknowledged (the event comes after the XACK), and the reply is recorded under the done key with a TTL.
  const [info] = await completed
  assert.equal(info.status, 201)
  assert.equal(await pendingCount(gw, svc.stream!, 'orders'), 0)
  assert.deepEqual(JSON.parse((await gw.command.get(doneKey(prefix, 'orders', 'o-1')))!), reply)
  const ttl = await gw.command.pttl(doneKey(prefix, 'orders', 'o-1'))
  assert.ok(ttl > 0 && ttl <= 600_000)
})

test('streams: 3 replicas, 300 requests — each handled exactly once by one replica', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const stream = `${prefix}:stream:orders`
  const handled = new Map<string, string[]>()
  const replicas = await Promise.all([1, 2, 3].map(async () => await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream,
    concurrency: 8,
    handler: async (_req, ctx: RequestContext) => {
      handled.set(ctx.id, [...(handled.get(ctx.id) ?? []), ctx.replicaId])
      await new Promise(resolve => setImmediate(resolve))
      return { body: { by: ctx.replicaId } }
    }
  })))
  const ids = Array.from({ length: 300 }, (_, i) => `req-${i}`)
  const pipeline = gw.command.pipeline()
  for (const id of ids) pipeline.xadd(stream, '*', STREAM_FIELD, JSON.stringify(gw.request(id)))
  await pipeline.exec()
  const replies = await Promise.all(ids.map(async id => await gw.reply(id, 'orders')))
  const replicaIds = new Set(replicas.map(r => r.replicaId))
  for (const [i, id] of ids.entries()) {
    assert.deepEqual(handled.get(id)?.length, 1, `${id} handled once`)
    assert.ok(replicaIds.has(handled.get(id)![0]!))
    assert.equal((replies[i]!.response.body as { by: string }).by, handled.get(id)![0])
  }
  assert.equal(handled.size, 300)
  // Close everything, then check nothing is left pending and no extra reply came.
  await Promise.all(replicas.map(r => r.close()))
  assert.equal(await pendingCount(gw, stream, 'orders'), 0)
  assert.equal(gw.replies.length, 300)
})

test('streams: an entry past its deadline is acknowledged without running the handler', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  let calls = 0
  const svc = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => { calls++; return {} } })
  const skipped = once(svc, 'request.skipped')
  await gw.xadd(svc.stream!, gw.request('late', { deadline: Date.now() - 1 }))
  const [info] = await skipped
  assert.equal(info.id, 'late')
  assert.equal(info.reason, 'deadline')
  assert.equal(calls, 0)
  assert.equal(await pendingCount(gw, svc.stream!, 'orders'), 0)
  assert.deepEqual(gw.repliesFor('late'), [])
})

test('streams: a redelivered id is answered from its done record, without running the handler', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  let calls = 0
  const svc = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => { calls++; return { body: 'fresh' } } })
  const stored = { id: 'dup', service: 'orders', response: { status: 201, body: 'stored' } }
  await gw.command.set(doneKey(prefix, 'orders', 'dup'), JSON.stringify(stored), 'PX', 60_000)
  const replayed = once(svc, 'request.replayed')
  await gw.xadd(svc.stream!, gw.request('dup'))
  const reply = await gw.reply('dup', 'orders')
  assert.deepEqual(reply, stored)
  await replayed
  assert.equal(calls, 0)
  assert.equal(await pendingCount(gw, svc.stream!, 'orders'), 0)
})

test('streams: rollback entries run the rollback handler and are acknowledged; no reply', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const svc = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream: true,
    handler: async () => ({ body: 'ok' }),
    rollback: async () => {}
  })
  const done = once(svc, 'rollback.completed')
  await gw.xadd(svc.stream!, { type: 'rollback', id: 'rb', request: httpRequest() })
  const [info] = await done
  assert.equal(info.id, 'rb')
  await gw.xadd(svc.stream!, gw.request('after'))
  await gw.reply('after', 'orders')
  await nothingPending(gw, svc.stream!, 'orders')
  assert.deepEqual(gw.repliesFor('rb'), [])
})

test('streams: a malformed entry goes to <stream>:dead at once and the service keeps going', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const svc = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => ({ body: 'ok' }) })
  const dead = once(svc, 'entry.dead-lettered')
  const entryId = await gw.xadd(svc.stream!, '{broken')
  const [info] = await dead
  assert.equal(info.entryId, entryId)
  const [[, fields]] = await gw.command.xrange(deadLetterKey(svc.stream!), '-', '+') as Array<[string, string[]]>
  const f = Object.fromEntries(fields!.reduce<Array<[string, string]>>((acc, v, i, a) => i % 2 === 0 ? [...acc, [v, a[i + 1]!]] : acc, []))
  assert.equal(f.message, '{broken')
  assert.match(f.reason!, /^malformed/)
  assert.equal(f.entryId, entryId)
  await gw.xadd(svc.stream!, gw.request('fine'))
  await gw.reply('fine', 'orders')
  await nothingPending(gw, svc.stream!, 'orders')
})

test('streams: close() never acknowledges unfinished work; it stays pending for another replica', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const entered = deferred()
  const release = deferred()
  let aborted: unknown
  const svc = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream: true,
    closeTimeoutMs: 50,
    handler: async (_req, ctx) => {
      entered.resolve()
      ctx.signal.addEventListener('abort', () => { aborted = ctx.signal.reason })
      await release.promise
      return { body: 'too late' }
    }
  })
  const entryId = await gw.xadd(svc.stream!, gw.request('unfinished'))
  await entered.promise
  await svc.close()
  assert.ok(aborted instanceof DOMException && aborted.name === 'AbortError')
  release.resolve()
  // Let the handler's continuation run: it must neither reply nor ack.
  await new Promise(resolve => setImmediate(resolve))
  const pending = await gw.command.xpending(svc.stream!, 'orders', '-', '+', 10) as Array<[string, string, number, number]>
  assert.equal(pending.length, 1)
  assert.equal(pending[0]![0], entryId)
  assert.equal(pending[0]![1], svc.consumer)
  assert.deepEqual(gw.repliesFor('unfinished'), [])
  assert.equal(await gw.command.exists(doneKey(prefix, 'orders', 'unfinished')), 0)

  // Another replica takes it over once it has been idle for claimIdleMs.
  const other = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, claimIdleMs: 100, handler: async (_r, ctx) => ({ body: { deliveries: ctx.deliveries } }) })
  const reply = await gw.reply('unfinished', 'orders')
  assert.deepEqual(reply.response.body, { deliveries: 2 })
  await other.close()
  assert.equal(await pendingCount(gw, svc.stream!, 'orders'), 0)
})

test('streams: close() waits for in-flight handlers, which then reply and ack; the consumer leaves the group', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const entered = deferred()
  const release = deferred()
  const svc = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream: true,
    handler: async () => { entered.resolve(); await release.promise; return { body: 'finished' } }
  })
  await gw.xadd(svc.stream!, gw.request('in-flight'))
  await entered.promise
  const closing = svc.close()
  release.resolve()
  await closing
  assert.equal((await gw.reply('in-flight', 'orders')).response.body, 'finished')
  assert.equal(await pendingCount(gw, svc.stream!, 'orders'), 0)
  const consumers = await gw.command.xinfo('CONSUMERS', svc.stream!, 'orders') as unknown[]
  assert.equal(consumers.length, 0)
})

test('streams: a handler slower than claimIdleMs is not reclaimed while its replica lives', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const stream = `${prefix}:stream:orders`
  const entered = deferred()
  const release = deferred()
  const calls: string[] = []
  // A renews its claim every 20 ms, far more often than the 300 ms B waits before taking over.
  const a = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream,
    claimIdleMs: 300,
    reclaimIntervalMs: 20,
    handler: async (_req, ctx) => { calls.push(ctx.replicaId); entered.resolve(); await release.promise; return { body: 'a' } }
  })
  await gw.xadd(stream, gw.request('slow'))
  await entered.promise
  const b = await startService(defer, redis.url, {
    service: 'orders', prefix, stream, claimIdleMs: 300, reclaimIntervalMs: 50, handler: async (_req, ctx) => { calls.push(ctx.replicaId); return { body: 'b' } }
  })
  // Nothing to await here: the point is that nothing happens while A works for 3 × claimIdleMs.
  await new Promise(resolve => setTimeout(resolve, 900))
  release.resolve()
  assert.equal((await gw.reply('slow', 'orders')).response.body, 'a')
  assert.deepEqual(calls, [a.replicaId])
  assert.notEqual(a.replicaId, b.replicaId)
  const [, , , deliveries] = (await gw.command.xpending(stream, 'orders', '-', '+', 1) as Array<[string, string, number, number]>)[0] ?? []
  assert.ok(deliveries === undefined || deliveries === 1)
})

test('streams: default prefix and explicit group/consumer names are used as given', async (t) => {
  const { defer, gw } = await setup(t)
  const stream = `${newPrefix()}:custom-stream`
  const svc = await startService(defer, redis.url, { service: 'orders', stream, group: 'g1', consumer: 'c1', handler: async () => ({ body: 'ok' }) })
  assert.equal(svc.stream, stream)
  assert.equal(svc.group, 'g1')
  assert.equal(svc.consumer, 'c1')
  await gw.xadd(stream, gw.request('named'))
  await gw.reply('named', 'orders')
  assert.equal(await gw.command.exists(doneKey(DEFAULT_PREFIX, 'orders', 'named')), 1)
  defer(() => gw.command.del(doneKey(DEFAULT_PREFIX, 'orders', 'named'), stream))
})

test('streams: one batch mixing a completed id and new requests: the completed one is answered from its record, the others run', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const stream = streamKey(prefix, 'orders')
  await gw.command.xgroup('CREATE', stream, 'orders', '0', 'MKSTREAM')
  const stored = { id: 'done-1', service: 'orders', response: { status: 201, body: 'stored' } }
  await gw.command.set(doneKey(prefix, 'orders', 'done-1'), JSON.stringify(stored), 'PX', 60_000)
  // Queued before the replica starts, so its first read returns them together.
  for (const id of ['new-1', 'done-1', 'new-2']) await gw.xadd(stream, gw.request(id))
  const seen: string[] = []
  const before = await commandCalls(gw)
  await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async (_req, ctx: RequestContext) => { seen.push(ctx.id); return { body: `fresh ${ctx.id}` } } })
  const replies = await Promise.all(['new-1', 'done-1', 'new-2'].map(async id => await gw.reply(id, 'orders')))
  assert.deepEqual(replies[1], stored)
  assert.equal((replies[0] as { response: { body: unknown } }).response.body, 'fresh new-1')
  assert.equal((replies[2] as { response: { body: unknown } }).response.body, 'fresh new-2')
  assert.deepEqual(seen.sort(), ['new-1', 'new-2'])
  await nothingPending(gw, stream, 'orders')
  // The done records were looked up in one MGET for the batch, not one GET per entry.
  const now = await commandCalls(gw)
  assert.equal(now.mget - before.mget, 1)
  assert.equal(now.get - before.get, 0)
})

/** Calls of GET and MGET the server has run (INFO commandstats). */
async function commandCalls (gw: FakeGateway): Promise<{ get: number, mget: number }> {
  const info = await gw.command.info('commandstats')
  const calls = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0)
  return { get: calls('get'), mget: calls('mget') }
}

test('streams: entries whose ids the gateway minted (`newId: true`) are not looked up on their first delivery', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const stream = streamKey(prefix, 'orders')
  await gw.command.xgroup('CREATE', stream, 'orders', '0', 'MKSTREAM')
  for (const id of ['minted-1', 'minted-2', 'minted-3']) await gw.xadd(stream, gw.request(id, { newId: true }))
  const before = await commandCalls(gw)
  await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async (_req, ctx: RequestContext) => ({ body: `fresh ${ctx.id}` }) })
  const replies = await Promise.all(['minted-1', 'minted-2', 'minted-3'].map(async id => await gw.reply(id, 'orders')))
  assert.deepEqual(replies.map(r => r.response.body), ['fresh minted-1', 'fresh minted-2', 'fresh minted-3'])
  await nothingPending(gw, stream, 'orders')
  // No record can exist under an id made for this one request: no MGET, no GET.
  const now = await commandCalls(gw)
  assert.equal(now.mget - before.mget, 0)
  assert.equal(now.get - before.get, 0)
})

test('streams: after the group is lost and created again from 0, entries already answered are replayed from their records, `newId` or not', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const calls = new Map<string, number>()
  const ranAgain = deferred<string>()
  const svc = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream: true,
    blockMs: 100,
    handler: async (_req, ctx: RequestContext) => {
      calls.set(ctx.id, (calls.get(ctx.id) ?? 0) + 1)
      if (calls.get(ctx.id)! > 1) ranAgain.resolve(ctx.id)
      return { body: `fresh ${ctx.id}` }
    }
  })
  await gw.xadd(svc.stream!, gw.request('answered-1', { newId: true }))
  assert.equal((await gw.reply('answered-1', 'orders')).response.body, 'fresh answered-1')
  await nothingPending(gw, svc.stream!, 'orders')

  // The group goes (as after a restart that kept the stream, or an XGROUP DESTROY): the replica creates it from 0.
  const regrouped = once(svc, 'group.created')
  const replayed = once(svc, 'request.replayed')
  await gw.command.xgroup('DESTROY', svc.stream!, 'orders')
  const [group] = await regrouped as [{ startId: string }]
  assert.equal(group.startId, '0')
  const outcome = await Promise.race([
    replayed.then(([event]) => `replayed ${(event as { id: string }).id}`),
    ranAgain.promise.then(id => `ran the handler again for ${id}`)
  ])
  assert.equal(outcome, 'replayed answered-1')
  await waitFor(() => gw.repliesFor('answered-1').length === 2, 'the replayed reply')
  assert.equal(calls.get('answered-1'), 1)

  // Entries appended after the re-creation are new again.
  await gw.xadd(svc.stream!, gw.request('after-1', { newId: true }))
  assert.equal((await gw.reply('after-1', 'orders')).response.body, 'fresh after-1')
  assert.equal(calls.get('after-1'), 1)
})

test('streams: a batch\'s completions go on the reader connection, SET → PUBLISH → XACK, ahead of the next XREADGROUP', async (t) => {
  const { defer, gw, prefix } = await setup(t)
  const svc = await startService(defer, redis.url, { service: 'orders', prefix, stream: true, handler: async () => ({ body: 'ok' }) })
  const clients = await gw.command.client('LIST') as string
  const readerAddr = /addr=(\S+) .*name=switchyard-service:orders:reader/.exec(clients)?.[1]
  assert.ok(readerAddr !== undefined, clients)
  const monitor = await gw.command.monitor()
  defer(() => monitor.disconnect())
  // What the reader sent after the request was appended, up to its next read (MONITOR lists commands in the order Redis ran them).
  const fromReader: string[] = []
  let appended = false
  const nextRead = deferred()
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = args[0]!.toLowerCase()
    if (name === 'xadd') appended = true
    if (!appended || source !== readerAddr) return
    fromReader.push(name)
    if (name === 'xreadgroup') nextRead.resolve()
  })
  await gw.xadd(svc.stream!, gw.request('on-reader', { newId: true }))
  assert.equal((await gw.reply('on-reader', 'orders')).response.body, 'ok')
  await nextRead.promise
  assert.deepEqual(fromReader, ['set', 'publish', 'xack', 'xreadgroup'])
})
