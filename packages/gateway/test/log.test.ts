/**
 * The log destination (log.ts): lines are gathered into chunks, written in
 * the order they were logged whichever way they came (pino or the access
 * line), and none is lost at exit.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { EventEmitter } from 'node:events'
import { pino } from 'pino'
import { accessLog, createLogger, CHUNK, FLUSH_MS, LineBuffer, type Destination } from '../src/log.js'
import type { GatewayConfig } from '../src/config/types.js'

const run = promisify(execFile)

async function tempFile (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-log-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return join(dir, 'gateway.log')
}

test('pino lines and access lines reach the file in the order they were written, in chunks of several lines', async (t) => {
  const file = await tempFile(t)
  const log = createLogger({ logging: { level: 'info', destination: file } } as unknown as GatewayConfig)
  const access = accessLog(log)
  for (let i = 0; i < 200; i++) {
    if (i % 10 === 0) log.warn({ i }, 'warned')
    access(`req-${i}`, 'GET', `/items/${i}`, 200, 0.123456789)
  }
  // Not all written yet: lines wait for a full chunk (or the timer, or a flush).
  const early = (await readFile(file, 'utf8')).split('\n').filter(l => l !== '').length
  assert.ok(early < 220, `${early} lines written before the flush`)
  await new Promise<void>((resolve, reject) => { log.flush((err?: Error) => { if (err !== undefined && err !== null) reject(err); else resolve() }) })
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { msg: string, i?: number, reqId?: string, ms?: number })
  assert.equal(lines.length, 220)
  const order = lines.map(l => l.msg === 'warned' ? `w${l.i}` : l.reqId)
  const expected: string[] = []
  for (let i = 0; i < 200; i++) {
    if (i % 10 === 0) expected.push(`w${i}`)
    expected.push(`req-${i}`)
  }
  assert.deepEqual(order, expected)
  assert.equal(lines[1]!.ms, 0.123)
})

test('lines still waiting for their chunk are written when the process exits', async (t) => {
  const file = await tempFile(t)
  const logModule = fileURLToPath(new URL('../src/log.ts', import.meta.url))
  const code = `
    const { createLogger, accessLog } = await import(${JSON.stringify(logModule)})
    const log = createLogger({ logging: { level: 'info', destination: ${JSON.stringify(file)} } })
    log.info('first')
    accessLog(log)('req-exit', 'GET', '/x', 200, 1)
    process.exit(0)
  `
  await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code])
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { msg: string })
  assert.deepEqual(lines.map(l => l.msg), ['first', 'request completed'])
})

/**
 * A destination that records what LineBuffer hands it. Like sonic-boom, it
 * emits 'write' with the bytes written once a write completes: `complete()`
 * completes the writes so far (until then they are in flight).
 */
function recorder (): { out: Destination, writes: string[], close: () => void, complete: () => void } {
  const writes: string[] = []
  let inFlight = 0
  const ee = new EventEmitter()
  const out = {
    write: (chunk: Buffer) => { writes.push(chunk.toString()); inFlight += chunk.length; return true },
    // sonic-boom without minLength: calls back at once, whatever is still in flight.
    flush: (cb?: (err?: Error) => void) => { cb?.() },
    flushSync: () => {},
    once: (event: string, fn: () => void) => { ee.once(event, fn); return out },
    on: (event: string, fn: (...args: unknown[]) => void) => { ee.on(event, fn); return out }
  }
  const complete = (): void => { const n = inFlight; inFlight = 0; if (n > 0) ee.emit('write', n) }
  return { out: out as unknown as Destination, writes, close: () => { ee.emit('close') }, complete }
}

test('flush(cb) calls back only once the destination has written every byte handed to it', (t) => {
  const { out, writes, close, complete } = recorder()
  t.after(close)
  const buf = new LineBuffer(out)
  let flushed = 0
  buf.flush(() => { flushed++ })
  assert.equal(flushed, 1, 'nothing pending: at once')
  buf.write('a\n')
  buf.write('ü\n') // 3 bytes, 2 characters
  buf.flush(() => { flushed++ })
  assert.deepEqual(writes, ['a\nü\n'])
  assert.equal(flushed, 1, 'the write is still in flight')
  complete()
  assert.equal(flushed, 2)
})

test('a chunk is written as soon as the gathered lines reach CHUNK characters, in one write', (t) => {
  const { out, writes, close } = recorder()
  t.after(close)
  const buf = new LineBuffer(out)
  const line = `${'x'.repeat(99)}\n`
  const lines = Math.ceil(CHUNK / line.length)
  for (let i = 0; i < lines - 1; i++) buf.write(line)
  assert.equal(writes.length, 0, 'nothing written below CHUNK')
  buf.write(line)
  assert.deepEqual(writes, [line.repeat(lines)])
})

test(`lines below CHUNK are written by the timer, every ${FLUSH_MS} ms`, (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const { out, writes, close } = recorder()
  t.after(close)
  const buf = new LineBuffer(out)
  buf.write('a\n')
  buf.write('b\n')
  t.mock.timers.tick(FLUSH_MS - 1)
  assert.equal(writes.length, 0)
  t.mock.timers.tick(1)
  assert.deepEqual(writes, ['a\nb\n'])
  t.mock.timers.tick(FLUSH_MS)
  assert.equal(writes.length, 1, 'an empty buffer writes nothing')
  buf.write('c\n')
  t.mock.timers.tick(FLUSH_MS)
  assert.deepEqual(writes, ['a\nb\n', 'c\n'])
})

test('the access line prints ms as Math.round(ms * 1000) / 1000 does, for every fraction', (t) => {
  const { out, writes, close } = recorder()
  t.after(close)
  const log = pino({ level: 'info' }, new LineBuffer(out))
  const access = accessLog(log)
  const values = [0, 0.0004, 0.0005, 0.001, 0.1, 0.12, 1.0005, 2.5, 999.9995, 12345.678, 86_400_000.25]
  for (let n = 0; n < 1000; n++) values.push(n / 1000 + 7, n * 1.0001)
  for (const ms of values) access('id', 'GET', '/x', 200, ms)
  log.flush()
  const printed = writes.join('').trim().split('\n').map(l => /"ms":([^,]+),/.exec(l)![1])
  assert.deepEqual(printed, values.map(ms => String(Math.round(ms * 1000) / 1000)))
})

test('each access line carries the millisecond it was written in', (t) => {
  const { out, writes, close } = recorder()
  t.after(close)
  t.mock.timers.enable({ apis: ['Date'], now: 1_765_000_000_000 })
  const log = pino({ level: 'info' }, new LineBuffer(out))
  const access = accessLog(log)
  access('a', 'GET', '/x', 200, 1)
  access('b', 'GET', '/x', 200, 1)
  t.mock.timers.tick(1)
  access('c', 'GET', '/x', 200, 1)
  t.mock.timers.tick(2500)
  access('d', 'GET', '/x', 200, 1)
  log.flush()
  const times = writes.join('').trim().split('\n').map(l => (JSON.parse(l) as { time: number }).time)
  assert.deepEqual(times, [1_765_000_000_000, 1_765_000_000_000, 1_765_000_000_001, 1_765_000_002_501])
})

test('a chunk with a non-ASCII URL is counted in bytes, so flush(cb) waits for all of them', (t) => {
  const writes: string[] = []
  const ee = new EventEmitter()
  const out = {
    write: (chunk: Buffer) => { writes.push(chunk.toString()); return true },
    flush: (cb?: (err?: Error) => void) => { cb?.() },
    flushSync: () => {},
    once: (event: string, fn: () => void) => { ee.once(event, fn); return out },
    on: (event: string, fn: (...args: unknown[]) => void) => { ee.on(event, fn); return out }
  } as unknown as Destination
  t.after(() => { ee.emit('close') })
  const log = pino({ level: 'info' }, new LineBuffer(out))
  const access = accessLog(log)
  access('a', 'GET', '/plain', 200, 1)
  access('b', 'GET', '/caf\u00e9', 200, 1) // as Node reads a raw byte 0xE9 in the request line
  let flushed = false
  log.flush(() => { flushed = true })
  const chunk = writes.join('')
  assert.ok(chunk.includes('"url":"/caf\u00e9"'), 'written as UTF-8')
  assert.equal(Buffer.byteLength(chunk), chunk.length + 1, 'é is two bytes in UTF-8')
  ee.emit('write', chunk.length) // all but the last byte
  assert.equal(flushed, false, 'one byte is still in flight')
  ee.emit('write', 1)
  assert.equal(flushed, true)
})
