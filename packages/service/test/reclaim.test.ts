import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { deadLetterKey } from '@switchyard/protocol'
import { startRedis, type RedisServer } from '../../../testing/index.js'
import { FakeGateway, cleanups, deferred, newPrefix, startService } from './helpers.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/replica.ts', import.meta.url))

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

interface FixtureLine { event: string, [k: string]: unknown }

/** Starts fixtures/replica.ts in its own Node process; `lines` yields its reports. */
function startChild (config: Record<string, unknown>, defer: (fn: () => unknown) => void): { child: ChildProcess, next: (event: string) => Promise<FixtureLine>, exited: Promise<unknown> } {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, FIXTURE_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = once(child, 'exit')
  defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const buffered: FixtureLine[] = []
  const waiting: Array<{ event: string, resolve: (l: FixtureLine) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as FixtureLine
    const i = waiting.findIndex(w => w.event === line.event)
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line)
    else buffered.push(line)
  })
  const next = (event: string): Promise<FixtureLine> => {
    const i = buffered.findIndex(l => l.event === event)
    if (i >= 0) return Promise.resolve(buffered.splice(i, 1)[0]!)
    return new Promise((resolve, reject) => {
      waiting.push({ event, resolve })
      exited.then(() => reject(new Error(`the fixture exited before reporting "${event}"`)), () => {})
    })
  }
  return { child, next, exited }
}

test('a replica SIGKILLed while holding pending entries: another replica reclaims and answers them', async (t) => {
  const defer = cleanups(t)
  const prefix = newPrefix()
  const stream = `${prefix}:stream:orders`
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())

  const doomed = startChild({ url: redis.url, prefix, service: 'orders', stream, mode: 'hang', claimIdleMs: 300 }, defer)
  const ready = await doomed.next('ready')
  const ids = ['k-1', 'k-2', 'k-3', 'k-4', 'k-5']
  for (const id of ids) await gw.xadd(stream, gw.request(id))
  for (let i = 0; i < ids.length; i++) await doomed.next('received')
  doomed.child.kill('SIGKILL')
  await doomed.exited

  // The dead consumer holds all five.
  const pending = await gw.command.xpending(stream, 'orders', '-', '+', 10) as Array<[string, string, number, number]>
  assert.equal(pending.length, 5)
  assert.ok(pending.every(([, consumer]) => consumer === ready.consumer))

  const survivor = await startService(defer, redis.url, {
    service: 'orders',
    prefix,
    stream,
    claimIdleMs: 300,
    handler: async (_req, ctx) => ({ body: { by: ctx.replicaId, deliveries: ctx.deliveries } })
  })
  const replies = await Promise.all(ids.map(async id => await gw.reply(id, 'orders')))
  for (const r of replies) assert.deepEqual(r.response.body, { by: survivor.replicaId, deliveries: 2 })
  await survivor.close()
  const [count] = await gw.command.xpending(stream, 'orders') as [number]
  assert.equal(Number(count), 0)
  for (const id of ids) assert.equal(gw.repliesFor(id).length, 1)
})

test('a poison request that kills every replica goes to <stream>:dead after maxDeliveries', async (t) => {
  const defer = cleanups(t)
  const prefix = newPrefix()
  const stream = `${prefix}:stream:orders`
  const gw = await FakeGateway.connect(redis.url, prefix)
  defer(() => gw.close())
  const config = { url: redis.url, prefix, service: 'orders', stream, mode: 'crash', claimIdleMs: 300, maxDeliveries: 2 }

  // Delivery 1: read fresh by the first replica, which dies on it.
  const first = startChild(config, defer)
  await first.next('ready')
  const entryId = await gw.xadd(stream, gw.request('poison'))
  assert.deepEqual((await first.next('received')).deliveries, 1)
  await first.exited
  // Delivery 2: reclaimed by the next replica once idle for claimIdleMs; it dies too.
  const second = startChild(config, defer)
  assert.deepEqual((await second.next('received')).deliveries, 2)
  await second.exited

  // Delivery 3 > maxDeliveries: dead-lettered, acknowledged, and never handed to the handler.
  let calls = 0
  // Through the logger, which exists before serve() resolves (an event listener could attach too late).
  const deadLettered = deferred<Record<string, unknown>>()
  const logger = {
    info () {},
    error () {},
    warn (obj: Record<string, unknown>, msg?: string) { if (msg === 'moved an entry to the dead-letter stream') deadLettered.resolve(obj) }
  }
  const last = await startService(defer, redis.url, {
    service: 'orders', prefix, stream, claimIdleMs: 300, maxDeliveries: 2, logger, handler: async () => { calls++; return {} }
  })
  const info = await deadLettered.promise
  assert.equal(info.entryId, entryId)
  assert.equal(info.requestId, 'poison')
  assert.equal(info.deliveries, 3)
  assert.equal(calls, 0)

  const dead = await gw.command.xrange(deadLetterKey(stream), '-', '+') as Array<[string, string[]]>
  assert.equal(dead.length, 1)
  const fields = dead[0]![1]
  const f: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  assert.deepEqual(JSON.parse(f.message!), JSON.parse((await gw.command.xrange(stream, entryId, entryId) as Array<[string, string[]]>)[0]![1][1]!))
  assert.match(f.reason!, /delivered 3 times/)
  assert.equal(f.deliveries, '3')
  assert.equal(f.consumer, last.consumer)
  assert.ok(Number(f.failedAt) > 0)
  assert.equal(f.entryId, entryId)
  assert.equal(f.id, 'poison')
  const [count] = await gw.command.xpending(stream, 'orders') as [number]
  assert.equal(Number(count), 0)
  // The gateway, still within the deadline, got an error reply instead of a timeout.
  const reply = await gw.reply('poison', 'orders')
  assert.equal(reply.response.status, 500)
})
