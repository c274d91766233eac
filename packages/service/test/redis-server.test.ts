import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { startRedis, freePort } from '../../../testing/index.js'

test('freePort never returns the machine Redis port', async () => {
  const port = await freePort()
  assert.ok(port > 0 && port !== 6379)
})

test('startRedis: kill (SIGKILL) and restart on the same port', async (t) => {
  const server = await startRedis()
  t.after(() => server.stop())
  assert.notEqual(server.port, 6379)
  assert.equal(server.url, `redis://127.0.0.1:${server.port}`)
  assert.match(server.prefix, /^test-[0-9a-f-]{36}$/)

  const client = new Redis(server.url, { retryStrategy: () => 20 })
  client.on('error', () => {})
  t.after(() => client.disconnect())
  await client.set(`${server.prefix}:k`, 'v')
  assert.equal(await client.get(`${server.prefix}:k`), 'v')

  const pid = server.pid
  const closed = once(client, 'close')
  await server.kill()
  assert.equal(server.running, false)
  await closed

  await server.restart()
  assert.equal(server.running, true)
  assert.notEqual(server.pid, pid)
  if (client.status !== 'ready') await once(client, 'ready')
  // A restart starts empty (no persistence) but on the same port.
  assert.equal(await client.get(`${server.prefix}:k`), null)
  assert.equal(await client.ping(), 'PONG')

  client.disconnect()
  await server.stop()
  await server.stop() // idempotent
  assert.equal(server.running, false)
})
