/**
 * The front door's own duties, on both ways in: the pre-router (configured
 * paths, no body) and fastify (a body to hand over, an unknown path). Each
 * answered request gets one access-log line and is counted in the metrics;
 * `inject` goes through the same dispatch as a socket.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGateway } from '../src/gateway.js'
import { startBackend } from './helpers/backend.js'
import type { GatewayConfig } from '../src/config/types.js'

interface AccessLine { level: number, time: number, name: string, reqId: string, method: string, url: string, status: number, ms: number, msg: string }

test('every answered request gets one access-log line and is counted, whichever way it came in', async (t) => {
  const b = await startBackend()
  t.after(() => b.close())
  const file = join(mkdtempSync(join(tmpdir(), 'sy-front-')), 'gateway.log')
  const gw = createGateway({
    logging: { level: 'info', destination: file },
    http: { routes: { '/items/:id': { GET: { services: { s: { type: 'http', url: `${b.url}/items/:id` } } }, POST: { services: { s: { type: 'http', url: `${b.url}/items/:id` } } } } } }
  } as unknown as GatewayConfig)
  const url = await gw.listen(0, '127.0.0.1')
  let closed = false
  t.after(async () => { if (!closed) await gw.close() })

  const get = await fetch(`${url}/items/7?q="x"`, { headers: { 'x-request-id': 'front-get-1' } })
  assert.equal(get.status, 200)
  await get.arrayBuffer()
  const post = await fetch(`${url}/items/8`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain', 'x-request-id': 'front-post-1' } })
  assert.equal(post.status, 200)
  await post.arrayBuffer()
  const missing = await fetch(`${url}/nowhere`, { headers: { 'x-request-id': 'front-404-1' } })
  assert.equal(missing.status, 404)
  await missing.arrayBuffer()
  const wrongMethod = await fetch(`${url}/items/9`, { method: 'DELETE', headers: { 'x-request-id': 'front-405-1' } })
  assert.equal(wrongMethod.status, 405)
  await wrongMethod.arrayBuffer()

  const metrics = await gw.metrics.text()
  assert.match(metrics, /switchyard_requests_total\{route="\/items\/:id",method="GET",status="200"\} 1\n/)
  assert.match(metrics, /switchyard_requests_total\{route="\/items\/:id",method="POST",status="200"\} 1\n/)
  assert.match(metrics, /switchyard_requests_total\{route="\/items\/:id",method="DELETE",status="405"\} 1\n/)
  assert.match(metrics, /switchyard_requests_total\{route="\(none\)",method="GET",status="404"\} 1\n/)
  assert.match(metrics, /switchyard_request_duration_seconds_count\{route="\/items\/:id"\} 3\n/)
  assert.match(metrics, /switchyard_request_duration_seconds_bucket\{le="\+Inf",route="\/items\/:id"\} 3\n/)
  // Counters only grow between scrapes.
  await (await fetch(`${url}/items/7`)).arrayBuffer()
  assert.match(await gw.metrics.text(), /switchyard_requests_total\{route="\/items\/:id",method="GET",status="200"\} 2\n/)

  await gw.close() // flushes the buffered log
  closed = true
  const lines = readFileSync(file, 'utf8').trim().split('\n').map(l => JSON.parse(l) as AccessLine).filter(l => l.msg === 'request completed')
  const byId = new Map(lines.map(l => [l.reqId, l]))
  const g = byId.get('front-get-1')
  assert.ok(g !== undefined, 'the GET has its line')
  assert.equal(g.level, 30)
  assert.equal(g.name, 'switchyard')
  assert.equal(g.method, 'GET')
  assert.equal(g.url, '/items/7?q=%22x%22')
  assert.equal(g.status, 200)
  assert.equal(typeof g.ms, 'number')
  assert.equal(g.ms, Math.round(g.ms * 1000) / 1000) // to the microsecond
  assert.equal(typeof g.time, 'number')
  assert.deepEqual([byId.get('front-post-1')?.status, byId.get('front-404-1')?.status, byId.get('front-405-1')?.status], [200, 404, 405])
  assert.equal(lines.length, 5)
})

test('the access log follows the level: at warn it writes nothing per request', async (t) => {
  const b = await startBackend()
  t.after(() => b.close())
  const file = join(mkdtempSync(join(tmpdir(), 'sy-front-')), 'gateway.log')
  const gw = createGateway({ logging: { level: 'warn', destination: file }, http: { routes: { '/a': { GET: { services: { s: { type: 'http', url: `${b.url}/a` } } } } } } } as unknown as GatewayConfig)
  const url = await gw.listen(0, '127.0.0.1')
  await (await fetch(`${url}/a`)).arrayBuffer()
  await gw.close()
  assert.equal(readFileSync(file, 'utf8').includes('request completed'), false)
})

test('inject goes through the same dispatch as a socket', async (t) => {
  const b = await startBackend()
  t.after(() => b.close())
  const gw = createGateway({ silent: true, http: { routes: { '/a/:id': { GET: { services: { s: { type: 'http', url: `${b.url}/a/:id` } } } } } } } as unknown as GatewayConfig)
  t.after(() => gw.close())
  await gw.listen(0, '127.0.0.1')
  const res = await gw.inject({ method: 'GET', url: '/a/5', headers: { 'x-request-id': 'inj-1' } })
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['x-request-id'], 'inj-1')
  assert.equal((await b.waitFor(r => r.url === '/a/5')).headers['x-request-id'], 'inj-1')
  const missing = await gw.inject({ method: 'GET', url: '/b' })
  assert.equal(missing.statusCode, 404)
  assert.equal(JSON.parse(missing.body).error.code, 'GW_ERR_ROUTE_NOT_FOUND')
})
