/**
 * One contract both Redis transports pass (STYLE §7): the same routes, the
 * same service (the SDK), once over pub/sub and once over Streams.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { serve, type Service, type HttpRequest } from '@switchyard/service'
import { startRedis, type RedisServer } from '../../../../testing/index.js'
import type { GatewayConfig, ServiceConfig } from '../../src/config/types.js'
import { httpBackend, json, startGateway } from './harness.js'

type Transport = 'redis' | 'redis-stream'

function serviceConfig (transport: Transport, prefix: string, name: string, extra: Record<string, unknown> = {}): ServiceConfig {
  return (transport === 'redis'
    ? { type: 'redis', requestChannel: `${prefix}:${name}:in`, ...extra }
    : { type: 'redis-stream', ...extra }) as ServiceConfig
}

for (const transport of ['redis', 'redis-stream'] as const) {
  describe(`Redis service contract over ${transport}`, () => {
    let redis: RedisServer
    let prefix: string
    const services: Service[] = []
    let url: string
    let close: () => Promise<void>
    let backendUrl: string
    const backendSeen: Array<{ path: string, body: string }> = []
    let closeBackend: () => Promise<void>
    const rollbacks: HttpRequest[] = []
    let rollbackArrived: () => void = () => {}
    const never = new Promise<never>(() => {})

    before(async () => {
      redis = await startRedis()
      prefix = `${redis.prefix}:${transport}`
      const backend = await httpBackend((req, body, res) => {
        backendSeen.push({ path: req.url ?? '', body: body.toString() })
        if (req.url?.startsWith('/fail') === true) { json(res, 500, { broken: true }); return }
        json(res, 200, { fromHttp: true })
      })
      backendUrl = backend.url
      closeBackend = backend.close
      const common = { redis: redis.url, prefix, claimIdleMs: 60_000, closeTimeoutMs: 200, heartbeatIntervalMs: 200 }
      const where = (name: string): { channel: string } | { stream: true } => transport === 'redis' ? { channel: `${prefix}:${name}:in` } : { stream: true }
      services.push(await serve({
        ...common,
        ...where('echo'),
        service: 'echo',
        handler: async (req) => {
          if (req.path.startsWith('/slow')) return await never
          if (req.path === '/shaped') {
            return { status: 201, headers: { 'x-from-service': 'yes' }, cookies: [{ name: 'sid', value: 'a b', httpOnly: true, path: '/' }], body: { shaped: true } }
          }
          if (req.path === '/moved') return { redirect: 'https://example.test/elsewhere' }
          if (req.path === '/text') return { contentType: 'text/plain', body: 'plain words' }
          if (req.path === '/user') return { body: { userid: 7 } }
          return { body: { method: req.method, path: req.path, params: req.params, query: req.query, headers: req.headers, body: req.body, bodyEncoding: req.bodyEncoding } }
        },
        rollback: async (req) => { rollbacks.push(req); rollbackArrived() }
      }))
      const svc = (extra: Record<string, unknown> = {}): ServiceConfig => serviceConfig(transport, prefix, 'echo', { timeout: 5000, ...extra })
      const config: GatewayConfig = {
        redis: { url: redis.url, prefix },
        http: {
          routes: {
            '/items/:id': { GET: { services: { echo: svc() } }, POST: { services: { echo: svc() } } },
            '/shaped': { GET: { services: { echo: svc() } } },
            '/moved': { GET: { services: { echo: svc() } } },
            '/text': { GET: { services: { echo: svc() } } },
            '/slow': { GET: { services: { echo: svc({ timeout: 300 }) } } },
            '/merged/:id': { GET: { services: { echo: svc({ mergeField: 'redis' }), web: { type: 'http', url: `${backendUrl}/web/:id` } } } },
            '/user': {
              POST: {
                services: {
                  echo: svc({ stage: 1 }),
                  web: {
                    type: 'http',
                    url: `${backendUrl}/profile`,
                    stage: 2,
                    merge: false,
                    onRequest: async (request, responses) => ({ handled: false, request: { ...request, body: { userid: (responses[0]!.response.body as { userid: number }).userid } } })
                  }
                }
              }
            },
            '/fails': { POST: { services: { echo: svc({ stage: 1 }), web: { type: 'http', url: `${backendUrl}/fail`, stage: 2 } } } },
            '/hooked': {
              GET: {
                onResponse: async (response) => ({ ...response, body: { ...(response.body as object), hooked: true } }),
                services: { echo: svc() }
              }
            }
          }
        }
      }
      const g = await startGateway(config)
      url = g.url
      close = async () => await g.gw.close()
    })

    after(async () => {
      await close()
      await Promise.all(services.map(async s => await s.close()))
      await closeBackend()
      await redis.stop()
    })

    test('GET: params, repeated query keys, headers, request id and trace context reach the service', async () => {
      const res = await fetch(`${url}/items/a%20b?tag=x&tag=y&one=1`, { headers: { 'x-custom': 'hello', 'x-request-id': 'req-contract-1' } })
      assert.equal(res.status, 200)
      const body = await res.json() as { method: string, path: string, params: Record<string, string>, query: Record<string, unknown>, headers: Record<string, string> }
      assert.equal(body.method, 'GET')
      assert.equal(body.path, '/items/a%20b')
      assert.deepEqual(body.params, { id: 'a b' })
      assert.deepEqual(body.query, { tag: ['x', 'y'], one: '1' })
      assert.equal(body.headers['x-custom'], 'hello')
      assert.equal(body.headers['x-request-id'], 'req-contract-1')
      assert.match(body.headers.traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)
      assert.equal(body.headers['x-forwarded-for'], '127.0.0.1')
    })

    test('POST bodies: JSON parsed, form as an object, text as a string, binary as base64', async () => {
      const post = async (contentType: string, payload: string | Buffer): Promise<{ body: unknown, bodyEncoding?: string }> => {
        const res = await fetch(`${url}/items/1`, { method: 'POST', headers: { 'content-type': contentType }, body: payload })
        assert.equal(res.status, 200)
        return await res.json() as { body: unknown, bodyEncoding?: string }
      }
      assert.deepEqual((await post('application/json', '{"a":[1,2],"b":{"c":true}}')).body, { a: [1, 2], b: { c: true } })
      assert.deepEqual((await post('application/x-www-form-urlencoded', 'a=1&b=x%20y&a=2')).body, { a: ['1', '2'], b: 'x y' })
      assert.equal((await post('text/plain', 'just text')).body, 'just text')
      const bytes = randomBytes(2048)
      const bin = await post('application/octet-stream', bytes)
      assert.equal(bin.bodyEncoding, 'base64')
      assert.equal(createHash('sha256').update(Buffer.from(bin.body as string, 'base64')).digest('hex'), createHash('sha256').update(bytes).digest('hex'))
    })

    test('replies: status, headers, cookies, redirect, content type', async () => {
      const shaped = await fetch(`${url}/shaped`)
      assert.equal(shaped.status, 201)
      assert.equal(shaped.headers.get('x-from-service'), 'yes')
      assert.match(shaped.headers.get('set-cookie') ?? '', /^sid=a%20b; Path=\/; HttpOnly$/)
      assert.deepEqual(await shaped.json(), { shaped: true })
      const moved = await fetch(`${url}/moved`, { redirect: 'manual' })
      assert.equal(moved.status, 302)
      assert.equal(moved.headers.get('location'), 'https://example.test/elsewhere')
      const text = await fetch(`${url}/text`)
      assert.equal(text.headers.get('content-type'), 'text/plain')
      assert.equal(await text.text(), 'plain words')
    })

    test('merged with an HTTP service on the same route', async () => {
      const res = await fetch(`${url}/merged/9`)
      assert.equal(res.status, 200)
      const body = await res.json() as { fromHttp: boolean, redis: { params: Record<string, string> } }
      assert.equal(body.fromHttp, true)
      assert.deepEqual(body.redis.params, { id: '9' })
    })

    test('stages: a stage-2 HTTP service sees the stage-1 Redis answer', async () => {
      const before = backendSeen.length
      const res = await fetch(`${url}/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      assert.equal(res.status, 200)
      assert.deepEqual(await res.json(), { userid: 7 })
      const seen = backendSeen.slice(before).find(s => s.path === '/profile')
      assert.deepEqual(JSON.parse(seen!.body), { userid: 7 })
    })

    test('rollback: a later failure sends the Redis service a rollback message', async () => {
      const arrived = new Promise<void>(resolve => { rollbackArrived = resolve })
      const res = await fetch(`${url}/fails`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"order":42}' })
      assert.equal(res.status, 500)
      assert.equal((await res.json() as { error: { service: string } }).error.service, 'web')
      await arrived
      assert.deepEqual(rollbacks.at(-1)!.body, { order: 42 })
      assert.equal(rollbacks.at(-1)!.path, '/fails')
    })

    test('timeout: a service that never answers gives 504', async () => {
      const res = await fetch(`${url}/slow`)
      assert.equal(res.status, 504)
      const body = await res.json() as { error: { code: string, service: string } }
      assert.equal(body.error.code, 'GW_ERR_UPSTREAM_TIMEOUT')
      assert.equal(body.error.service, 'echo')
    })

    test('hooks: the route onResponse sees and changes the Redis answer', async () => {
      const res = await fetch(`${url}/hooked`)
      const body = await res.json() as { hooked: boolean, path: string }
      assert.equal(body.hooked, true)
      assert.equal(body.path, '/hooked')
    })
  })
}
