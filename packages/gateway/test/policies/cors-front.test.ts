/**
 * CORS through the front door: a preflight to a path whose route has no
 * OPTIONS method is answered by the CORS policy of the method it asks about,
 * instead of the 405 every other unknown method gets.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startBackend, json } from '../helpers/backend.js'
import { startGateway } from '../helpers/gateway.js'

test('a preflight on a GET-only path is answered 204 with CORS headers; a method the path lacks is 405', async (t) => {
  const backend = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => backend.close())
  const gw = await startGateway({
    cors: { origin: 'https://shop.example', allowMethods: ['GET'] },
    http: { routes: { '/only-get': { GET: { services: { s: { type: 'http', url: `${backend.url}/x` } } } } } }
  }, t)
  const ok = await fetch(`${gw.url}/only-get`, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'GET' } })
  assert.equal(ok.status, 204)
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://shop.example')
  assert.equal(backend.requests.length, 0)
  const missing = await fetch(`${gw.url}/only-get`, { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'DELETE' } })
  assert.equal(missing.status, 405)
  assert.equal(missing.headers.get('allow'), 'GET, HEAD')
})
