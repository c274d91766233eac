/**
 * PRODUCT §1.2: a Redis service written the way Prism's docs write it — a plain
 * client, JSON.parse, publish { id, service, response } — behind a Prism-style
 * CommonJS config, next to an HTTP service on the same route.
 */
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import { loadConfigFile } from '../../src/index.js'
import { httpBackend, json, startGateway } from './harness.js'

let redis: RedisServer
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

/** Prism's docs example service, unchanged but for the channel names. */
async function prismService (url: string, requestChannel: string, serviceName: string, answer: (request: { body: { userid: number } }) => unknown): Promise<() => void> {
  const subscriber = new Redis(url)
  const publisher = new Redis(url)
  await subscriber.subscribe(requestChannel)
  subscriber.on('message', (_channel: string, message: string) => {
    const redisHttpRequest = JSON.parse(message)
    if (redisHttpRequest.type === 'rollback') return
    const responseChannel = redisHttpRequest.responseChannel
    const id = redisHttpRequest.id
    const request = redisHttpRequest.request
    const response = JSON.stringify({ id, service: serviceName, response: { status: 200, body: answer(request) } })
    publisher.publish(responseChannel, response)
  })
  return () => { subscriber.disconnect(); publisher.disconnect() }
}

test('a Prism-era service and config work unchanged: two Redis services and one HTTP service merged', async (t) => {
  const p = redis.prefix
  const stopUsers = await prismService(redis.url, `${p}:userserviceinput`, 'userservice', (r) => ({ userid: r.body.userid, name: 'batman' }))
  const stopMessages = await prismService(redis.url, `${p}:messagingserviceinput`, 'messagingservice', (r) => ({ numMessages: r.body.userid === 1 ? 10 : 0 }))
  t.after(() => { stopUsers(); stopMessages() })
  const backend = await httpBackend((_req, body, res) => json(res, 200, { account: JSON.parse(body.toString()).userid === 1 ? 'gold' : 'none' }))
  t.after(backend.close)

  const dir = await mkdtemp(join(tmpdir(), 'prism-'))
  const file = join(dir, 'config.js')
  await writeFile(file, `module.exports = {
  redis: { options: { url: ${JSON.stringify(redis.url)} } },
  http: {
    redis: { responseChannel: "${p}:responses" },
    routes: {
      "/users": {
        POST: {
          services: {
            userservice: { type: "redis", requestChannel: "${p}:userserviceinput" },
            messagingservice: { type: "redis", requestChannel: "${p}:messagingserviceinput" },
            accountservice: { type: "http", url: "${backend.url}/account" }
          }
        }
      }
    }
  }
};
`)
  const { url, gw } = await startGateway(await loadConfigFile(file))
  t.after(() => gw.close())
  const res = await fetch(`${url}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userid: 1 }) })
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { userid: 1, name: 'batman', numMessages: 10, account: 'gold' })
})
