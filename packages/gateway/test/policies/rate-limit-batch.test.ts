/**
 * The Redis store sends the decisions of one event-loop turn in one command
 * (policies/rate-limit/redis-store.ts), against a private redis-server: each
 * decision stays atomic and exact, in arrival order; a decision whose command
 * fails rejects alone; a turn with more than MAX_BATCH decisions makes several
 * commands.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { MAX_BATCH, RedisStore } from '../../src/policies/rate-limit/redis-store.js'
import type { LimitCheck } from '../../src/policies/rate-limit/store.js'

const HOUR = 3_600_000

let server: RedisServer
let client: Redis
let n = 0
before(async () => {
  server = await startRedis()
  client = new Redis(server.url, { enableOfflineQueue: false, lazyConnect: true })
  await client.connect()
})
after(async () => {
  client.disconnect()
  await server.stop()
})

function key (): string { return `${server.prefix}:rl:${++n}` }

/** How many EVALSHA and EVAL commands Redis has run since the last CONFIG RESETSTAT. */
async function scriptCalls (): Promise<number> {
  const info = await client.info('commandstats')
  let calls = 0
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1])
  return calls
}

test('the decisions of one turn go in one command, each exact and in arrival order', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const gcra: LimitCheck = { key: key(), algorithm: 'gcra', limit: 5, windowMs: HOUR }
  const sliding: LimitCheck = { key: key(), algorithm: 'sliding-window', limit: 3, windowMs: HOUR }
  await store.consume([{ key: key(), algorithm: 'gcra', limit: 1, windowMs: HOUR }])
  await client.config('RESETSTAT')
  const decisions = await Promise.all([
    ...Array.from({ length: 8 }, () => store.consume([gcra])),
    ...Array.from({ length: 5 }, () => store.consume([sliding]))
  ])
  assert.equal(await scriptCalls(), 1)
  assert.deepEqual(decisions.slice(0, 8).map(d => [d.allowed, d.results[0]!.remaining]),
    [[true, 4], [true, 3], [true, 2], [true, 1], [true, 0], [false, 0], [false, 0], [false, 0]])
  assert.deepEqual(decisions.slice(8).map(d => [d.allowed, d.results[0]!.remaining]),
    [[true, 2], [true, 1], [true, 0], [false, 0], [false, 0]])
  for (const d of decisions.filter(d => !d.allowed)) assert.ok(d.results[0]!.retryAfterMs > 0)
  // What was charged is in Redis: three sliding-window members, and the next turn sees them.
  assert.equal(await client.zcard(sliding.key), 3)
  const next = await store.consume([sliding])
  assert.equal(next.allowed, false)
})

test('a refusal by one limit of a decision charges none of its limits, while the next decision in the command is charged', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const open: LimitCheck = { key: key(), algorithm: 'gcra', limit: 100, windowMs: HOUR }
  const full: LimitCheck = { key: key(), algorithm: 'sliding-window', limit: 1, windowMs: HOUR }
  await store.consume([full])
  const [refused, admitted] = await Promise.all([store.consume([open, full]), store.consume([open])])
  assert.equal(refused.allowed, false)
  assert.equal(refused.results[0]!.remaining, 99) // what it would have left; not charged
  assert.equal(admitted.allowed, true)
  assert.equal(admitted.results[0]!.remaining, 99) // the first charge of `open`
})

test('a decision whose key holds another type rejects alone; the others in its command decide', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const wrong = key()
  await client.rpush(wrong, 'not a limit')
  const good: LimitCheck = { key: key(), algorithm: 'gcra', limit: 10, windowMs: HOUR }
  await client.config('RESETSTAT')
  const results = await Promise.allSettled([
    store.consume([good]),
    store.consume([{ key: wrong, algorithm: 'sliding-window', limit: 10, windowMs: HOUR }]),
    store.consume([good])
  ])
  assert.equal(await scriptCalls(), 1)
  assert.equal(results[0].status, 'fulfilled')
  assert.equal(results[2].status, 'fulfilled')
  assert.equal(results[1].status, 'rejected')
  assert.match(String((results[1] as PromiseRejectedResult).reason), /WRONGTYPE/)
  if (results[0].status === 'fulfilled' && results[2].status === 'fulfilled') {
    assert.deepEqual([results[0].value.results[0]!.remaining, results[2].value.results[0]!.remaining], [9, 8])
  }
})

test(`more than ${MAX_BATCH} decisions in one turn make several commands, and the limit still holds exactly`, async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const check: LimitCheck = { key: key(), algorithm: 'gcra', limit: 200, windowMs: HOUR }
  const count = MAX_BATCH * 2 + 10
  await client.config('RESETSTAT')
  const decisions = await Promise.all(Array.from({ length: count }, () => store.consume([check])))
  assert.equal(await scriptCalls(), 3)
  assert.equal(decisions.filter(d => d.allowed).length, 200)
  assert.deepEqual(decisions.slice(0, 200).map(d => d.results[0]!.remaining), Array.from({ length: 200 }, (_, i) => 199 - i))
})

test('a Redis without the script (SCRIPT FLUSH) is sent it again, for the whole command', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const check: LimitCheck = { key: key(), algorithm: 'gcra', limit: 2, windowMs: HOUR }
  await client.script('FLUSH')
  const decisions = await Promise.all([store.consume([check]), store.consume([check]), store.consume([check])])
  assert.deepEqual(decisions.map(d => d.allowed), [true, true, false])
})

test('GCRA stays exact for very high rates: every request is charged, whatever the limit', async () => {
  // 1e9 per minute is one request every 6e-5 ms: below a double's step at an epoch in ms (~2.4e-4).
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const huge: LimitCheck = { key: key(), algorithm: 'gcra', limit: 1_000_000_000, windowMs: 60_000 }
  const million: LimitCheck = { key: key(), algorithm: 'gcra', limit: 1_000_000, windowMs: 1_000 }
  const decisions = await Promise.all(Array.from({ length: 100 }, () => store.consume([huge, million])))
  assert.deepEqual(decisions.map(d => d.results[0]!.remaining), Array.from({ length: 100 }, (_, i) => 999_999_999 - i))
  assert.deepEqual(decisions.map(d => d.results[1]!.remaining), Array.from({ length: 100 }, (_, i) => 999_999 - i))
  assert.ok(decisions.every(d => d.allowed && d.results[0]!.resetMs >= 1))
})

test('a GCRA key written in the earlier format (an epoch-ms arrival time) keeps its charge', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const check: LimitCheck = { key: key(), algorithm: 'gcra', limit: 2, windowMs: 60_000 }
  // One of two charged: the bucket is full again 30 s from now.
  await client.set(check.key, String(Date.now() + 30_000), 'PX', 30_000)
  const [last, refused] = await Promise.all([store.consume([check]), store.consume([check])])
  assert.deepEqual([last.allowed, last.results[0]!.remaining, refused.allowed], [true, 0, false])
  assert.match(await client.get(check.key) ?? '', /^\d+ \S+$/)
})

test('decisions that pass the same checks, or share keys across different checks, are each exact in one command', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const perRoute: LimitCheck = { key: key(), algorithm: 'gcra', limit: 6, windowMs: HOUR }
  const a: LimitCheck[] = [{ key: key(), algorithm: 'sliding-window', limit: 2, windowMs: HOUR }, perRoute]
  const b: LimitCheck[] = [{ key: key(), algorithm: 'gcra', limit: 10, windowMs: HOUR }, perRoute]
  await client.config('RESETSTAT')
  // Interleaved: a, b, a, b, …; `perRoute` is in both sets, so it is charged by both clients.
  const decisions = await Promise.all(Array.from({ length: 8 }, (_, i) => store.consume(i % 2 === 0 ? a : b)))
  assert.equal(await scriptCalls(), 1)
  assert.deepEqual(decisions.map(d => d.allowed), [true, true, true, true, false, true, false, true])
  assert.deepEqual(decisions.map(d => d.results[1]!.remaining), [5, 4, 3, 2, 1, 1, 0, 0])
  assert.deepEqual(decisions.filter((_, i) => i % 2 === 1).map(d => d.results[0]!.remaining), [9, 8, 7, 6])
  // Each admitted request of `a` is its own sliding-window member.
  assert.equal(await client.zcard(a[0]!.key), 2)
})

/** Commands Redis ran (inside scripts too) since the last CONFIG RESETSTAT, by name. */
async function commandCalls (): Promise<Record<string, number>> {
  const info = await client.info('commandstats')
  const out: Record<string, number> = {}
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2])
  return out
}

test('a command reads each key once and writes what it charged once, however many decisions use the key', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const sliding: LimitCheck = { key: key(), algorithm: 'sliding-window', limit: 100, windowMs: HOUR }
  const gcra: LimitCheck = { key: key(), algorithm: 'gcra', limit: 100, windowMs: HOUR }
  await store.consume([sliding, gcra]) // the script is loaded
  await client.config('RESETSTAT')
  const decisions = await Promise.all(Array.from({ length: 20 }, () => store.consume([sliding, gcra])))
  assert.deepEqual(decisions.map(d => [d.results[0]!.remaining, d.results[1]!.remaining]), Array.from({ length: 20 }, (_, i) => [98 - i, 98 - i]))
  const calls = await commandCalls()
  assert.equal(calls.evalsha, 1)
  // One trim, count, add and expiry for the sliding window, one read and one write for GCRA: not 20 of each.
  assert.deepEqual([calls.zremrangebyscore, calls.zcard, calls.zadd, calls.pexpire, calls.get, calls.set], [1, 1, 1, 1, 1, 1])
  assert.equal(await client.zcard(sliding.key), 21)
})

test('decisions in one command end exactly as the same decisions one command each: results and what Redis holds', async () => {
  // Small limits so refusals happen; a bucket shared by two windows; a decision naming one key twice.
  const plan = (p: string): LimitCheck[][] => {
    const s3: LimitCheck = { key: `${p}:s`, algorithm: 'sliding-window', limit: 3, windowMs: HOUR }
    const s5: LimitCheck = { key: `${p}:s`, algorithm: 'sliding-window', limit: 5, windowMs: 2 * HOUR }
    const g4: LimitCheck = { key: `${p}:g`, algorithm: 'gcra', limit: 4, windowMs: HOUR }
    const t2: LimitCheck = { key: `${p}:t`, algorithm: 'sliding-window', limit: 2, windowMs: HOUR }
    return [[s3], [g4, s3], [s5], [t2, t2], [g4], [s3, g4], [t2], [s5, g4], [s3], [g4], [t2, s5], [s5], [g4, t2]]
  }
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const batched = key()
  const oneByOne = key()
  await client.config('RESETSTAT')
  const together = await Promise.all(plan(batched).map(async checks => await store.consume(checks)))
  const calls = await scriptCalls()
  const apart = []
  for (const checks of plan(oneByOne)) apart.push(await store.consume(checks))
  assert.equal(calls, 1)
  const view = (ds: typeof together): unknown => ds.map(d => [d.allowed, d.results.map(r => r.remaining)])
  assert.deepEqual(view(together), view(apart))
  for (const suffix of ['s', 't']) assert.equal(await client.zcard(`${batched}:${suffix}`), await client.zcard(`${oneByOne}:${suffix}`))
  const tat = async (k: string): Promise<number> => Number((await client.get(k))!.split(' ')[1])
  assert.ok(Math.abs(await tat(`${batched}:g`) - await tat(`${oneByOne}:g`)) < 60_000) // both charged the same count; times differ by the calls' gap
  for (const suffix of ['s', 't', 'g']) {
    const [a, b] = [await client.pttl(`${batched}:${suffix}`), await client.pttl(`${oneByOne}:${suffix}`)]
    assert.ok(Math.abs(a - b) < 60_000, `${suffix}: ${a} against ${b}`)
  }
})

test('decisions waited for by callbacks (consumeWith) share the command with promised ones, each in arrival order', async () => {
  const store = new RedisStore(client, { timeoutMs: 5_000 })
  const check: LimitCheck = { key: key(), algorithm: 'sliding-window', limit: 3, windowMs: HOUR }
  await store.consume([{ key: key(), algorithm: 'gcra', limit: 1, windowMs: HOUR }])
  await client.config('RESETSTAT')
  const byCallback: Array<Promise<number>> = []
  const promised: Array<Promise<number>> = []
  for (let i = 0; i < 5; i++) {
    if (i % 2 === 0) {
      byCallback.push(new Promise((resolve, reject) => {
        store.consumeWith({ checks: [check], decided: (d) => { resolve(d.allowed ? d.results[0]!.remaining : -1) }, failed: reject })
      }))
    } else {
      promised.push(store.consume([check]).then(d => d.allowed ? d.results[0]!.remaining : -1))
    }
  }
  // Arrival order: callback, promise, callback, promise, callback → 2, 1, 0, refused, refused.
  assert.deepEqual(await Promise.all(byCallback), [2, 0, -1])
  assert.deepEqual(await Promise.all(promised), [1, -1])
  assert.equal(await scriptCalls(), 1)
})
