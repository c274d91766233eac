/**
 * PRODUCT §2.1: route specificity whatever the declaration order, HEAD served
 * from GET, ALL, 404 for an unknown path, 405 with `Allow` for a wrong method.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startBackend, json } from './helpers/backend.js'
import { startGateway } from './helpers/gateway.js'
import { rawRequest } from './helpers/client.js'
import type { GatewayConfig } from '../src/config/types.js'

for (const order of ['param first', 'static first'] as const) {
  test(`/users/me beats /users/:id (${order})`, async (t) => {
    const me = await startBackend((_req, res) => json(res, 200, { who: 'me-service' }))
    const byId = await startBackend((req, res) => json(res, 200, { who: 'id-service', url: req.url }))
    t.after(() => me.close())
    t.after(() => byId.close())
    const meRoute = { GET: { services: { me: { type: 'http', url: `${me.url}/me` } } } }
    const idRoute = { GET: { services: { users: { type: 'http', url: `${byId.url}/users/:id` } } } }
    const routes = order === 'param first'
      ? { '/users/:id': idRoute, '/users/me': meRoute }
      : { '/users/me': meRoute, '/users/:id': idRoute }
    const { url } = await startGateway({ http: { routes } } as GatewayConfig, t)

    const a = await fetch(`${url}/users/me`)
    assert.equal(a.status, 200)
    assert.deepEqual(await a.json(), { who: 'me-service' })
    const b = await fetch(`${url}/users/42`)
    assert.deepEqual(await b.json(), { who: 'id-service', url: '/users/42' })
    assert.equal(me.requests.length, 1)
    assert.equal(byId.requests.length, 1)
  })
}

test('HEAD is served from GET: headers, no body (streaming and merged routes)', async (t) => {
  const payload = Buffer.from(JSON.stringify({ hello: 'world', n: 1 }))
  const backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(payload.length), 'x-backend': 'yes' })
    res.end(payload)
  })
  const other = await startBackend((_req, res) => json(res, 200, { other: true }, { 'x-other': 'yes' }))
  t.after(() => backend.close())
  t.after(() => other.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/one': { GET: { services: { a: { type: 'http', url: `${backend.url}/one` } } } },
        '/two': { GET: { services: { a: { type: 'http', url: `${backend.url}/two` }, b: { type: 'http', url: `${other.url}/two` } } } }
      }
    }
  } as unknown as GatewayConfig, t)

  const get = await rawRequest(url, '/one')
  assert.equal(get.status, 200)
  assert.equal(get.body.toString(), payload.toString())

  const head = await rawRequest(url, '/one', { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.body.length, 0)
  assert.match(String(head.headers['content-type']), /^application\/json/)
  assert.equal(head.headers['x-backend'], 'yes')
  assert.equal(head.headers['content-length'], String(payload.length))
  assert.ok(head.headers['x-request-id'])

  const headMerged = await rawRequest(url, '/two', { method: 'HEAD' })
  assert.equal(headMerged.status, 200)
  assert.equal(headMerged.body.length, 0)
  assert.match(String(headMerged.headers['content-type']), /^application\/json/)
  assert.equal(headMerged.headers['x-other'], 'yes')
  // The merged GET has the same headers and a body.
  const getMerged = await fetch(`${url}/two`)
  assert.deepEqual(await getMerged.json(), { hello: 'world', n: 1, other: true })
})

test('ALL answers every method', async (t) => {
  const backend = await startBackend()
  t.after(() => backend.close())
  const { url } = await startGateway({ http: { routes: { '/any': { ALL: { services: { a: { type: 'http', url: `${backend.url}/any` } } } } } } } as GatewayConfig, t)
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']
  for (const method of methods) {
    const res = await rawRequest(url, '/any', { method, ...(method === 'GET' || method === 'HEAD' ? {} : { body: 'x', headers: { 'content-type': 'text/plain' } }) })
    assert.equal(res.status, 200, method)
  }
  assert.deepEqual(backend.requests.map(r => r.method), methods)
})

test('an unknown path is 404 GW_ERR_ROUTE_NOT_FOUND', async (t) => {
  const backend = await startBackend()
  t.after(() => backend.close())
  const { url } = await startGateway({ http: { routes: { '/known': { GET: { services: { a: { type: 'http', url: backend.url } } } } } } } as GatewayConfig, t)
  for (const path of ['/unknown', '/known/deeper', '/']) {
    const res = await fetch(url + path)
    assert.equal(res.status, 404, path)
    const body = await res.json() as { error: { code: string } }
    assert.equal(body.error.code, 'GW_ERR_ROUTE_NOT_FOUND')
  }
  assert.equal(backend.requests.length, 0)
})

test('a known path with a wrong method is 405 with Allow listing the configured methods', async (t) => {
  const backend = await startBackend()
  t.after(() => backend.close())
  const svc = { services: { a: { type: 'http', url: backend.url } } }
  const { url } = await startGateway({ http: { routes: { '/items/:id': { GET: svc, POST: svc }, '/only-put': { PUT: svc } } } } as GatewayConfig, t)

  const res = await fetch(`${url}/items/1`, { method: 'DELETE' })
  assert.equal(res.status, 405)
  const body = await res.json() as { error: { code: string } }
  assert.equal(body.error.code, 'GW_ERR_METHOD_NOT_ALLOWED')
  const allow = (res.headers.get('allow') ?? '').split(',').map(s => s.trim()).sort()
  assert.deepEqual(allow, ['GET', 'HEAD', 'POST'])

  const put = await fetch(`${url}/only-put`)
  assert.equal(put.status, 405)
  assert.deepEqual((put.headers.get('allow') ?? '').split(',').map(s => s.trim()), ['PUT'])
  await put.arrayBuffer()
  assert.equal(backend.requests.length, 0)
})

test('a path without parameters is matched exactly as the router matches it, whatever form the URL takes', async (t) => {
  const backend = await startBackend()
  t.after(() => backend.close())
  const svc = { services: { a: { type: 'http', url: `${backend.url}/items` } } }
  const { url } = await startGateway({ http: { routes: { '/items': { GET: svc }, '/:other': { GET: { services: { a: { type: 'http', url: `${backend.url}/other` } } } } } } } as GatewayConfig, t)

  // The query goes on to the service; the static path wins over the parametric one.
  const q = await rawRequest(url, '/items?x=1&y=%20')
  assert.equal(q.status, 200)
  assert.equal(backend.requests.at(-1)!.url, '/items?x=1&y=%20')
  // Percent-encoded and fragment forms are the router's to decode: the same route.
  for (const path of ['/it%65ms', '/items#frag']) {
    const r = await rawRequest(url, path)
    assert.equal(r.status, 200, path)
    assert.equal(backend.requests.at(-1)!.url, '/items', path)
  }
  // No case or trailing-slash folding: those are other paths (here the parametric route's, or none).
  const upper = await rawRequest(url, '/ITEMS')
  assert.equal(upper.status, 200)
  assert.equal(backend.requests.at(-1)!.url, '/other')
  const slash = await rawRequest(url, '/items/')
  assert.equal(slash.status, 404)
  // A method no route can have is not served by the path's route.
  const before = backend.requests.length
  const odd = await rawRequest(url, '/items', { method: 'PROPFIND' })
  assert.ok(odd.status >= 400, `PROPFIND answered ${odd.status}`)
  assert.equal(backend.requests.length, before)
})
