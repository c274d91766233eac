import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { startRedis, type RedisServer } from '../../../testing/index.js'
import { GatewayError, type HttpRequest, type RequestContext } from '../src/index.js'
import { FakeGateway, cleanups, deferred, httpRequest, newPrefix, startService } from './helpers.js'

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

async function setup (t: Parameters<typeof cleanups>[0]): Promise<{ defer: (fn: () => unknown) => void, gw: FakeGateway, prefix: string, channel: string }> {
  const defer = cleanups(t)
  const prefix = newPrefix()
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())
  return { defer, gw, prefix, channel: `${prefix}:requests:users` }
}

test('pub/sub: a request gets one reply { id, service, response } on its responseChannel', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  const seen: Array<{ request: HttpRequest, ctx: RequestContext }> = []
  await startService(defer, redis.url, {
    service: 'users',
    prefix,
    channel,
    handler: async (request, ctx) => {
      seen.push({ request, ctx })
      return { status: 201, headers: { 'x-handled-by': ctx.replicaId }, body: { got: request.body, path: request.path } }
    }
  })
  const msg = gw.request('req-1', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', auth: { sub: 'u1' } })
  assert.equal(await gw.publish(channel, msg), 1)
  const reply = await gw.reply('req-1', 'users')
  assert.equal(reply.id, 'req-1')
  assert.equal(reply.service, 'users')
  assert.equal(reply.response.status, 201)
  assert.deepEqual(reply.response.body, { got: { n: 1 }, path: '/things/7' })
  assert.equal(seen.length, 1)
  assert.deepEqual(seen[0]!.request, msg.request)
  assert.equal(seen[0]!.ctx.id, 'req-1')
  assert.equal(seen[0]!.ctx.deadline, msg.deadline)
  assert.equal(seen[0]!.ctx.traceparent, msg.traceparent)
  assert.deepEqual(seen[0]!.ctx.auth, { sub: 'u1' })
  assert.equal(seen[0]!.ctx.transport, 'redis')
})

test('pub/sub: a Prism-era message (no extensions) is answered', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  await startService(defer, redis.url, { service: 'legacy', prefix, channel, handler: async () => ({ body: { ok: true } }) })
  const prism = { type: 'request', id: 'p1', request: { path: '/x', method: 'GET', params: {}, query: {}, headers: {} }, responseChannel: gw.replyChannel }
  await gw.publish(channel, JSON.stringify(prism))
  const reply = await gw.reply('p1', 'legacy')
  assert.deepEqual(reply.response, { body: { ok: true } })
})

test('pub/sub: malformed messages are ignored, logged, and the service keeps answering', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  const warnings: string[] = []
  const logger = { info () {}, error () {}, warn (_o: object, msg?: string) { warnings.push(msg ?? '') } }
  let calls = 0
  const svc = await startService(defer, redis.url, { service: 'users', prefix, channel, logger, handler: async () => { calls++; return { body: 'ok' } } })
  const rejected: string[] = []
  svc.on('message.rejected', ({ reason }) => rejected.push(reason))
  for (const bad of ['{not json', '42', 'null', '[]', '{"type":"request"}', '{"type":"request","id":"x","request":{}}', '{"type":"other","id":"x","request":{}}']) {
    await gw.publish(channel, bad)
  }
  await gw.publish(channel, gw.request('after-garbage'))
  const reply = await gw.reply('after-garbage', 'users')
  assert.equal(reply.response.body, 'ok')
  assert.equal(calls, 1)
  assert.equal(rejected.length, 7)
  assert.equal(warnings.length, 7)
})

test('pub/sub: a throwing handler gives a 500 reply with GW_ERR_SERVICE_HANDLER and no stack', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  const svc = await startService(defer, redis.url, {
    service: 'users',
    prefix,
    channel,
    handler: async (req) => {
      if (req.path === '/gw') throw new GatewayError('GW_ERR_AUTH_FORBIDDEN', { message: 'not yours' })
      if (req.path === '/bad-return') return 'oops' as never
      throw new Error('database is down')
    }
  })
  const failed = once(svc, 'request.failed')
  await gw.publish(channel, gw.request('boom'))
  const reply = await gw.reply('boom', 'users')
  assert.deepEqual(reply.response, { status: 500, body: { error: { code: 'GW_ERR_SERVICE_HANDLER', message: 'database is down' } } })
  assert.doesNotMatch(JSON.stringify(reply), /at .*\.ts/)
  const [info] = await failed
  assert.equal(info.id, 'boom')

  await gw.publish(channel, gw.request('forbidden', { request: httpRequest({ path: '/gw' }) }))
  const forbidden = await gw.reply('forbidden', 'users')
  assert.deepEqual(forbidden.response, { status: 403, body: { error: { code: 'GW_ERR_AUTH_FORBIDDEN', message: 'not yours' } } })

  await gw.publish(channel, gw.request('bad-return', { request: httpRequest({ path: '/bad-return' }) }))
  const bad = await gw.reply('bad-return', 'users')
  assert.equal(bad.response.status, 500)
  assert.equal((bad.response.body as { error: { code: string } }).error.code, 'GW_ERR_SERVICE_HANDLER')
})

test('pub/sub: rollback messages reach the rollback handler, and no reply is sent', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  const rolledBack = deferred<{ request: HttpRequest, id: string }>()
  await startService(defer, redis.url, {
    service: 'users',
    prefix,
    channel,
    handler: async () => ({ body: 'done' }),
    rollback: async (request, ctx) => { rolledBack.resolve({ request, id: ctx.id }) }
  })
  await gw.publish(channel, { type: 'rollback', id: 'r-1', request: httpRequest({ path: '/undo' }) })
  const got = await rolledBack.promise
  assert.equal(got.id, 'r-1')
  assert.equal(got.request.path, '/undo')
  // Requests still work after a rollback, and the rollback itself produced no reply.
  await gw.publish(channel, gw.request('r-2'))
  await gw.reply('r-2', 'users')
  assert.deepEqual(gw.repliesFor('r-1'), [])
})

test('pub/sub: two services on one channel each reply once to one message, with their own name', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  await startService(defer, redis.url, { service: 'profile', prefix, channel, handler: async () => ({ body: { profile: 1 } }) })
  await startService(defer, redis.url, { service: 'orders', prefix, channel, handler: async () => ({ body: { orders: 2 } }) })
  assert.equal(await gw.publish(channel, gw.request('shared')), 2)
  const [a, b] = await Promise.all([gw.reply('shared', 'profile'), gw.reply('shared', 'orders')])
  assert.deepEqual(a.response.body, { profile: 1 })
  assert.deepEqual(b.response.body, { orders: 2 })
  assert.equal(gw.repliesFor('shared').length, 2)
})

test('pub/sub: at most `concurrency` handlers run at once; the rest wait their turn', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  let running = 0
  let peak = 0
  const gates: Array<() => void> = []
  const started = deferred()
  const svc = await startService(defer, redis.url, {
    service: 'users',
    prefix,
    channel,
    concurrency: 3,
    handler: async () => {
      running++
      peak = Math.max(peak, running)
      if (running === 3) started.resolve()
      await new Promise<void>(resolve => gates.push(resolve))
      running--
      return { body: 'ok' }
    }
  })
  for (let i = 0; i < 10; i++) await gw.publish(channel, gw.request(`c-${i}`))
  await started.promise
  assert.equal(svc.inFlight, 3)
  // Release handlers one at a time until all ten replied.
  const all = Promise.all(Array.from({ length: 10 }, async (_, i) => await gw.reply(`c-${i}`, 'users')))
  let released = 0
  while (released < 10) {
    if (gates.length === 0) { await new Promise(resolve => setImmediate(resolve)); continue }
    gates.shift()!()
    released++
  }
  await all
  assert.equal(peak, 3)
})

test('pub/sub: byte bodies cross as base64 with bodyEncoding, both ways', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  const { bodyBytes } = await import('../src/index.js')
  await startService(defer, redis.url, {
    service: 'files',
    prefix,
    channel,
    handler: async (req) => ({ contentType: 'application/octet-stream', body: Buffer.concat([bodyBytes(req)!, Buffer.from([0xff])]) })
  })
  const bytes = Buffer.from([0, 1, 2, 254])
  await gw.publish(channel, gw.request('bin', { request: httpRequest({ body: bytes.toString('base64'), bodyEncoding: 'base64' }) }))
  const reply = await gw.reply('bin', 'files')
  assert.equal(reply.response.bodyEncoding, 'base64')
  assert.deepEqual(Buffer.from(reply.response.body as string, 'base64'), Buffer.from([0, 1, 2, 254, 255]))
})

test('pub/sub: close() finishes in-flight handlers, then stops receiving', async (t) => {
  const { defer, gw, prefix, channel } = await setup(t)
  const entered = deferred()
  const gate = deferred()
  const svc = await startService(defer, redis.url, {
    service: 'users',
    prefix,
    channel,
    handler: async () => { entered.resolve(); await gate.promise; return { body: 'finished' } }
  })
  await gw.publish(channel, gw.request('slow'))
  await entered.promise
  const closing = svc.close()
  assert.strictEqual(svc.close(), closing) // idempotent: one memoized promise
  gate.resolve()
  await closing
  assert.equal((await gw.reply('slow', 'users')).response.body, 'finished')
  assert.equal(await gw.publish(channel, gw.request('late')), 0)
})
