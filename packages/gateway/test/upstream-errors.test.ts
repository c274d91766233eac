/**
 * PRODUCT §3.1 and §9.1–§9.2: a refused connection is 502, a silent backend
 * 504 after its timeout, and neither body leaks the internal address; a
 * backend error with invalid JSON never crashes the gateway.
 */
import { test } from 'node:test'
import { get } from 'node:http'
import { once } from 'node:events'
import assert from 'node:assert/strict'
import { startBackend, unusedPort, json } from './helpers/backend.js'
import { startGateway } from './helpers/gateway.js'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createGateway } from '../src/gateway.js'
import type { GatewayConfig } from '../src/config/types.js'

const ID = { 'x-request-id': 'req-upstream-test' }

function routesFor (url: string, ok: string, timeout?: number): Record<string, unknown> {
  const svc = { type: 'http', url, ...(timeout !== undefined ? { timeout } : {}) }
  return {
    '/stream': { GET: { services: { backend: svc } } },
    '/merged': { GET: { services: { backend: svc, ok: { type: 'http', url: ok } } } }
  }
}

test('a refused connection is 502 GW_ERR_UPSTREAM_UNREACHABLE without the internal address', async (t) => {
  const port = await unusedPort()
  const ok = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => ok.close())
  const { url } = await startGateway({ http: { routes: routesFor(`http://127.0.0.1:${port}/x`, ok.url) } } as GatewayConfig, t)
  for (const route of ['/stream', '/merged']) {
    const res = await fetch(url + route, { headers: ID })
    const text = await res.text()
    assert.equal(res.status, 502, route)
    const body = JSON.parse(text) as { error: { code: string, service?: string } }
    assert.equal(body.error.code, 'GW_ERR_UPSTREAM_UNREACHABLE')
    assert.equal(body.error.service, 'backend')
    assert.ok(!text.includes('127.0.0.1'), text)
    assert.ok(!text.includes(String(port)), text)
    assert.ok(!text.includes('ECONNREFUSED'), text)
  }
})

test('a backend that never answers is 504 GW_ERR_UPSTREAM_TIMEOUT after its timeout', async (t) => {
  const silent = await startBackend(() => { /* never answers */ })
  const ok = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => silent.close())
  t.after(() => ok.close())
  const { url } = await startGateway({ http: { routes: routesFor(`${silent.url}/slow`, ok.url, 300) } } as GatewayConfig, t)
  for (const route of ['/stream', '/merged']) {
    const start = Date.now()
    const res = await fetch(url + route, { headers: ID, signal: AbortSignal.timeout(15_000) })
    const text = await res.text()
    assert.equal(res.status, 504, route)
    assert.equal(JSON.parse(text).error.code, 'GW_ERR_UPSTREAM_TIMEOUT')
    assert.ok(!text.includes('127.0.0.1'), text)
    assert.ok(!text.includes(String(silent.port)), text)
    // Not the 30 s default, nor anything near it.
    assert.ok(Date.now() - start < 10_000)
  }
  assert.equal(silent.requests.length, 2)
})

test('a backend answering 500 with invalid JSON: the client gets an error, the gateway keeps serving', async (t) => {
  let broken = true
  const flaky = await startBackend((_req, res) => {
    if (broken) {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end('{"error": "oops", not json')
    } else json(res, 200, { flaky: 'fine' })
  })
  const ok = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => flaky.close())
  t.after(() => ok.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/single': { GET: { services: { flaky: { type: 'http', url: `${flaky.url}/s` } } } },
        '/merged': { GET: { services: { flaky: { type: 'http', url: `${flaky.url}/m` }, ok: { type: 'http', url: `${ok.url}/m` } } } },
        // A single service whose body is parsed (an onResponse hook): the invalid JSON must not crash it either.
        '/parsed': { GET: { onResponse: () => undefined, services: { flaky: { type: 'http', url: `${flaky.url}/p` } } } }
      }
    }
  } as unknown as GatewayConfig, t)

  const single = await fetch(`${url}/single`)
  assert.equal(single.status, 500)
  assert.equal(await single.text(), '{"error": "oops", not json')

  const merged = await fetch(`${url}/merged`)
  assert.ok(merged.status === 500 || merged.status === 502, String(merged.status))
  const mbody = await merged.json() as { error: { service: string, code: string } }
  assert.equal(mbody.error.service, 'flaky')

  const parsed = await fetch(`${url}/parsed`)
  assert.equal(parsed.status, 500)
  await parsed.arrayBuffer()

  broken = false
  for (const route of ['/single', '/merged', '/parsed']) {
    const res = await fetch(url + route)
    assert.equal(res.status, 200, route)
    await res.arrayBuffer()
  }
  const again = await fetch(`${url}/merged`)
  assert.deepEqual(await again.json(), { flaky: 'fine', ok: true })
})

test('`retries`: a 503 answer is replaced by the next attempt on every kind of route (passthrough, stream, buffered); a POST is never retried', async (t) => {
  // Each path answers 503 to its first request, then 200.
  const seen = new Map<string, number>()
  const backend = await startBackend((req, res) => {
    const n = (seen.get(req.url!) ?? 0) + 1
    seen.set(req.url!, n)
    if (n === 1) json(res, 503, { error: 'warming up' })
    else json(res, 200, { attempt: n })
  })
  t.after(() => backend.close())
  const svc = (path: string): Record<string, unknown> => ({ type: 'http', url: `${backend.url}${path}`, retries: 2 })
  const { url, gw } = await startGateway({
    http: {
      routes: {
        '/direct': { GET: { services: { s: svc('/direct') } }, POST: { services: { s: svc('/post') } } },
        '/streamed': { GET: { cors: { origin: '*' }, services: { s: svc('/streamed') } } },
        '/buffered': { GET: { onResponse: () => undefined, services: { s: svc('/buffered') } } }
      }
    }
  } as unknown as GatewayConfig, t)
  assert.deepEqual(gw.routes().map(r => [r.path, r.method, r.mode]), [
    ['/direct', 'GET', 'passthrough'], ['/direct', 'POST', 'passthrough'], ['/streamed', 'GET', 'stream'], ['/buffered', 'GET', 'buffered']
  ])
  for (const route of ['/direct', '/streamed', '/buffered']) {
    const res = await fetch(url + route)
    assert.equal(res.status, 200, route)
    assert.deepEqual(await res.json(), { attempt: 2 }, route)
    assert.equal(seen.get(route), 2, route)
  }
  const post = await fetch(`${url}/direct`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  assert.equal(post.status, 503) // not idempotent: the service's answer stands
  await post.arrayBuffer()
  assert.equal(seen.get('/post'), 1)
})

test('a client that leaves cancels its service call on the passthrough, before the answer starts and in the middle of it', { timeout: 30_000 }, async (t) => {
  const closed = new Map<string, Promise<unknown>>()
  const b = await startBackend((req, res) => {
    closed.set(req.url ?? '', once(res, 'close'))
    if (req.url === '/during') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first part, and the rest never comes')
    } else if (req.url === '/fine') json(res, 200, { ok: true })
    // '/before' never answers at all.
  })
  t.after(() => b.close())
  // A long service timeout: only the client leaving can end these calls.
  const { url } = await startGateway({ http: { routes: { '/before': { GET: { services: { s: { type: 'http', url: `${b.url}/before`, timeout: 120_000 } } } }, '/during': { GET: { services: { s: { type: 'http', url: `${b.url}/during`, timeout: 120_000 } } } }, '/fine': { GET: { services: { s: { type: 'http', url: `${b.url}/fine` } } } } } } } as GatewayConfig, t)

  const before = get(`${url}/before`)
  before.on('error', () => {})
  await b.waitFor(r => r.url === '/before')
  before.destroy()
  await closed.get('/before')

  const during = get(`${url}/during`)
  during.on('error', () => {})
  const [res] = await once(during, 'response') as [import('node:http').IncomingMessage]
  res.on('error', () => {})
  await once(res, 'data')
  during.destroy()
  await closed.get('/during')

  // The gateway goes on serving.
  const fine = await fetch(`${url}/fine`)
  assert.equal(fine.status, 200)
  assert.deepEqual(await fine.json(), { ok: true })
})

test('the passthrough answers alike with nothing around it (served by callbacks) and with a policy around it (through its handler): 200, 413, 502, 504, each counted once', async (t) => {
  const b = await startBackend((req, res) => {
    if (req.url?.startsWith('/silent') === true) return // never answers
    json(res, 200, { path: req.url })
  })
  t.after(() => b.close())
  const port = await unusedPort()
  const allow = { allowed: ['127.0.0.0/8', '::1'] }
  const routes: Record<string, unknown> = {}
  for (const [prefix, extra] of [['/bare', {}], ['/guarded', { allowList: allow }]] as const) {
    routes[`${prefix}/ok`] = { GET: { ...extra, services: { s: { type: 'http', url: `${b.url}/ok` } } } }
    routes[`${prefix}/limit`] = { POST: { ...extra, bodyLimitBytes: 10, services: { s: { type: 'http', url: `${b.url}/limit` } } } }
    routes[`${prefix}/down`] = { GET: { ...extra, services: { s: { type: 'http', url: `http://127.0.0.1:${port}/x` } } } }
    routes[`${prefix}/silent`] = { GET: { ...extra, services: { s: { type: 'http', url: `${b.url}/silent`, timeout: 200 } } } }
  }
  const { url, gw } = await startGateway({ http: { routes } } as unknown as GatewayConfig, t)
  assert.ok(gw.routes().every(r => r.mode === 'passthrough'), 'every route takes the fast path')
  const answers: Record<string, Array<[number, string | undefined, string | null]>> = {}
  for (const prefix of ['/bare', '/guarded']) {
    const seen: Array<[number, string | undefined, string | null]> = answers[prefix] = []
    for (const [path, init] of [['ok', {}], ['limit', { method: 'POST', body: 'x'.repeat(50) }], ['down', {}], ['silent', {}]] as const) {
      const res = await fetch(`${url}${prefix}/${path}`, { ...init, headers: ID }).catch((err: Error) => { throw new Error(`${prefix}/${path}: ${String(err.cause)}`) })
      const body = await res.json() as { path?: string, error?: { code: string } }
      seen.push([res.status, body.error?.code ?? body.path, res.headers.get('x-request-id')])
    }
  }
  assert.deepEqual(answers['/bare'], [
    [200, '/ok', ID['x-request-id']],
    [413, 'GW_ERR_BODY_TOO_LARGE', ID['x-request-id']],
    [502, 'GW_ERR_UPSTREAM_UNREACHABLE', ID['x-request-id']],
    [504, 'GW_ERR_UPSTREAM_TIMEOUT', ID['x-request-id']]
  ])
  assert.deepEqual(answers['/guarded'], answers['/bare'])
  // Each answer counted once, under its route and status.
  const metrics = await gw.metrics.text()
  for (const prefix of ['/bare', '/guarded']) {
    for (const [path, method, status] of [['ok', 'GET', 200], ['limit', 'POST', 413], ['down', 'GET', 502], ['silent', 'GET', 504]] as const) {
      assert.match(metrics, new RegExp(`switchyard_requests_total\\{route="${prefix}/${path}",method="${method}",status="${status}"\\} 1\\n`), `${prefix}/${path}`)
    }
  }
})

test('a failure while logging why a service call failed still answers (500), on the callback path and through a policy, and the gateway keeps serving', async (t) => {
  const port = await unusedPort()
  const ok = await startBackend((_req, res) => json(res, 200, { ok: true }))
  t.after(() => ok.close())
  const logger = pino({ level: 'info' }, new Writable({ write (_chunk, _enc, cb) { cb() } }))
  logger.warn = () => { throw new Error('the log broke') } // failed() logs a 5xx reason at warn
  const down = { type: 'http', url: `http://127.0.0.1:${port}/x` }
  const gw = createGateway({
    http: {
      routes: {
        '/bare': { GET: { services: { s: down } } },
        '/guarded': { GET: { allowList: { allowed: ['127.0.0.0/8', '::1'] }, services: { s: down } } },
        '/fine': { GET: { services: { s: { type: 'http', url: ok.url } } } }
      }
    }
  } as unknown as GatewayConfig, { logger })
  const url = await gw.listen(0, '127.0.0.1')
  t.after(async () => { await gw.close() })
  for (const path of ['/bare', '/guarded']) {
    const res = await fetch(url + path)
    await res.arrayBuffer()
    assert.equal(res.status, 500, path)
  }
  const fine = await fetch(`${url}/fine`)
  assert.deepEqual(await fine.json(), { ok: true })
})
