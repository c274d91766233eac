/**
 * PRODUCT §3.4 and §3.7: stages run in order and a later stage's hooks see
 * earlier responses; a failing stage stops the later ones; rollbacks go only
 * to the services that had succeeded.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startBackend, json } from './helpers/backend.js'
import { startGateway } from './helpers/gateway.js'
import type { HttpRequest } from '@switchyard/protocol'
import type { FetchedHttpResponse, GatewayConfig } from '../src/config/types.js'

test("stage 2's onRequest sees stage 1's response and changes the request it sends", async (t) => {
  const users = await startBackend((_req, res) => json(res, 200, { userid: 'u-77', name: 'Ada' }))
  const orders = await startBackend((_req, res, body) => json(res, 201, { created: JSON.parse(body.toString()) }))
  t.after(() => users.close())
  t.after(() => orders.close())
  let seen: FetchedHttpResponse[] = []
  const { url } = await startGateway({
    http: {
      routes: {
        '/checkout': {
          POST: {
            services: {
              // Declared first but staged later: stages, not declaration order, decide.
              orders: {
                type: 'http',
                url: `${orders.url}/orders`,
                stage: 2,
                mergeField: 'order',
                onRequest: (request: HttpRequest, fetched: FetchedHttpResponse[]) => {
                  seen = [...fetched]
                  const user = fetched.find(f => f.service === 'users')!.response.body as { userid: string }
                  return { handled: false, request: { ...request, body: { ...(request.body as object), userid: user.userid } } }
                }
              },
              users: { type: 'http', url: `${users.url}/me`, stage: 1, mergeField: 'user' }
            }
          }
        }
      }
    }
  } as unknown as GatewayConfig, t)
  const res = await fetch(`${url}/checkout`, { method: 'POST', body: '{"item":"book"}', headers: { 'content-type': 'application/json' } })
  assert.equal(res.status, 200)
  assert.equal(orders.requests.length, 1)
  const sent = orders.requests[0]!
  assert.deepEqual(JSON.parse(sent.body.toString()), { item: 'book', userid: 'u-77' })
  assert.match(String(sent.headers['content-type']), /application\/json/)
  assert.equal(sent.headers['content-length'], String(sent.body.length))
  assert.deepEqual(seen.map(f => [f.service, f.response.status]), [['users', 200]])
  assert.deepEqual(await res.json(), { user: { userid: 'u-77', name: 'Ada' }, order: { created: { item: 'book', userid: 'u-77' } } })
})

test('a failing stage-1 service stops stage 2', async (t) => {
  const first = await startBackend((_req, res) => json(res, 500, { failed: true }))
  const second = await startBackend((_req, res) => json(res, 200, { second: true }))
  t.after(() => first.close())
  t.after(() => second.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/s': { POST: { services: { first: { type: 'http', url: first.url, stage: 1 }, second: { type: 'http', url: second.url, stage: 2 } } } },
        // Unstaged services run after every staged one.
        '/u': { POST: { services: { later: { type: 'http', url: second.url }, first: { type: 'http', url: first.url, stage: 0 } } } }
      }
    }
  } as GatewayConfig, t)
  for (const path of ['/s', '/u']) {
    const res = await fetch(url + path, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    assert.ok(res.status >= 500, String(res.status))
    const body = await res.json() as { error: { service: string } }
    assert.equal(body.error.service, 'first')
  }
  // The answer is sent only after every stage that ran: stage 2 never started.
  assert.equal(first.requests.length, 2)
  assert.equal(second.requests.length, 0)
})

test('rollback reaches only the services that had succeeded', { timeout: 15_000 }, async (t) => {
  const a = await startBackend((req, res) => json(res, req.method === 'DELETE' ? 200 : 201, { a: true }))
  const b = await startBackend((req, res) => json(res, req.method === 'DELETE' ? 200 : 500, { b: 'failed' }))
  const c = await startBackend((_req, res) => json(res, 200, { c: true }))
  t.after(() => a.close())
  t.after(() => b.close())
  t.after(() => c.close())
  const { url, close } = await startGateway({
    http: {
      routes: {
        '/orders/:id': {
          POST: {
            services: {
              a: { type: 'http', url: `${a.url}/do/:id`, rollback: (req: HttpRequest) => ({ ...req, method: 'DELETE', path: `http://127.0.0.1:${a.port}/undo/:id` }) },
              b: { type: 'http', url: `${b.url}/do/:id`, rollback: (req: HttpRequest) => ({ ...req, method: 'DELETE', path: `http://127.0.0.1:${b.port}/undo/:id` }) },
              c: { type: 'http', url: `${c.url}/do/:id` }
            }
          }
        }
      }
    }
  } as unknown as GatewayConfig, t)
  const res = await fetch(`${url}/orders/o-123`, { method: 'POST', body: '{"qty":1}', headers: { 'content-type': 'application/json' } })
  assert.equal(res.status, 500)
  assert.equal((await res.json() as { error: { service: string } }).error.service, 'b')

  const undo = await a.waitFor(r => r.method === 'DELETE')
  assert.equal(undo.url, '/undo/o-123')
  // close() waits for every rollback in flight: after it, any rollback to b would have arrived.
  await close()
  assert.deepEqual(b.requests.map(r => r.method), ['POST'])
  assert.deepEqual(c.requests.map(r => r.method), ['POST'])
  assert.equal(a.requests.filter(r => r.method === 'DELETE').length, 1)
})
