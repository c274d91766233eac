/**
 * PRODUCT §3.3 through the gateway: three replicas share the load with each
 * request handled once, and a replica SIGKILLed while holding a request hands
 * it to another replica, whose answer reaches the waiting client.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { serve, type Service } from '@switchyard/service'
import { Redis } from 'ioredis'
import { streamKey } from '@switchyard/protocol'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { startGateway } from './harness.js'

const replicaFixture = fileURLToPath(new URL('../../../service/test/fixtures/replica.ts', import.meta.url))

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

test('3 replicas, 300 concurrent requests: every request answered once, each id handled by exactly one replica', async (t) => {
  const prefix = `${redis.prefix}:load`
  const handledBy = new Map<string, string[]>()
  const replicas: Service[] = []
  for (let i = 0; i < 3; i++) {
    const name = `replica-${i}`
    replicas.push(await serve({
      redis: redis.url,
      prefix,
      service: 'orders',
      stream: true,
      concurrency: 32,
      replicaId: name,
      handler: async (req, ctx) => {
        handledBy.set(ctx.id, [...(handledBy.get(ctx.id) ?? []), name])
        await new Promise(resolve => setImmediate(resolve))
        return { body: { n: req.params.n, by: name } }
      }
    }))
  }
  t.after(async () => { await Promise.all(replicas.map(async r => await r.close())) })
  const { url, gw } = await startGateway({ redis: { url: redis.url, prefix }, http: { routes: { '/orders/:n': { GET: { services: { orders: { type: 'redis-stream', timeout: 20_000 } } } } } } })
  t.after(() => gw.close())

  const results = await Promise.all(Array.from({ length: 300 }, async (_, n) => {
    const res = await fetch(`${url}/orders/${n}`, { headers: { 'x-request-id': `load-${n}` } })
    return { status: res.status, body: await res.json() as { n: string, by: string } }
  }))
  for (const [n, r] of results.entries()) {
    assert.equal(r.status, 200)
    assert.equal(r.body.n, String(n))
  }
  assert.equal(handledBy.size, 300)
  for (const [id, by] of handledBy) assert.equal(by.length, 1, `${id} handled by ${by.join(', ')}`)
  const used = new Set(results.map(r => r.body.by))
  assert.ok(used.size >= 2, `only ${[...used].join()} did any work`)
})

test('a replica SIGKILLed while holding a request: another replica reclaims it and the client gets the answer', async (t) => {
  const prefix = `${redis.prefix}:kill`
  const stream = streamKey(prefix, 'orders')
  const { url, gw } = await startGateway({ redis: { url: redis.url, prefix }, http: { routes: { '/orders/:n': { POST: { services: { orders: { type: 'redis-stream', timeout: 20_000 } } } } } } })
  t.after(() => gw.close())

  // The doomed replica is the only one running when the request arrives, so it takes it.
  const child = spawn(process.execPath, ['--import', 'tsx', replicaFixture], {
    env: { ...process.env, FIXTURE_CONFIG: JSON.stringify({ url: redis.url, prefix, service: 'orders', stream, mode: 'hang' }) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout! })
  const events = (async function * () { for await (const line of lines) yield JSON.parse(line) as { event: string, id?: string } })()
  const next = async (event: string): Promise<{ event: string, id?: string }> => {
    // Not `for await`: leaving that loop would close the generator for the next call.
    for (;;) {
      const r = await events.next()
      if (r.done === true) throw new Error(`replica exited before "${event}"`)
      if (r.value.event === event) return r.value
    }
  }
  await next('ready')

  const pending = fetch(`${url}/orders/1`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'kill-1' }, body: '{"qty":2}' })
  const received = await next('received')
  assert.equal(received.id, 'kill-1')
  child.kill('SIGKILL')
  await once(child, 'exit')

  const rescuer = await serve({
    redis: redis.url,
    prefix,
    service: 'orders',
    stream: true,
    claimIdleMs: 300,
    handler: async (req, ctx) => ({ body: { rescued: true, id: ctx.id, qty: (req.body as { qty: number }).qty, deliveries: ctx.deliveries } })
  })
  t.after(() => rescuer.close())
  const res = await pending
  assert.equal(res.status, 200)
  const body = await res.json() as { rescued: boolean, id: string, qty: number, deliveries: number }
  assert.deepEqual({ rescued: body.rescued, id: body.id, qty: body.qty }, { rescued: true, id: 'kill-1', qty: 2 })
  assert.ok(body.deliveries >= 2)
})

test('an entry says `newId: true` when the gateway minted the request id, and not when the client sent one (docs/protocol.md §3.2)', async (t) => {
  const prefix = `${redis.prefix}:newid`
  const { url, gw } = await startGateway({
    redis: { url: redis.url, prefix },
    // No replica: each request times out at once; the entries stay in the stream to be read.
    http: { routes: { '/orders': { GET: { services: { orders: { type: 'redis-stream', timeout: 50 } } } } } }
  })
  t.after(() => gw.close())
  const minted = await fetch(`${url}/orders`)
  const named = await fetch(`${url}/orders`, { headers: { 'x-request-id': 'client-named-1' } })
  const invalid = await fetch(`${url}/orders`, { headers: { 'x-request-id': 'not a valid id!' } })
  assert.deepEqual([minted.status, named.status, invalid.status], [504, 504, 504])
  const reader = new Redis(redis.url)
  t.after(() => reader.disconnect())
  const entries = await reader.xrange(streamKey(prefix, 'orders'), '-', '+')
  const messages = entries.map(([, fields]) => JSON.parse(fields[1]!) as { id: string, newId?: unknown })
  assert.equal(messages.length, 3)
  assert.equal(messages[0]!.id, minted.headers.get('x-request-id'))
  assert.equal(messages[0]!.newId, true)
  assert.equal(messages[1]!.id, 'client-named-1')
  assert.equal('newId' in messages[1]!, false)
  // An invalid x-request-id is replaced by a minted one.
  assert.equal(messages[2]!.id, invalid.headers.get('x-request-id'))
  assert.notEqual(messages[2]!.id, 'not a valid id!')
  assert.equal(messages[2]!.newId, true)
})
