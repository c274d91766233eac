/**
 * PRODUCT §2.2–§2.3 and §3.1: params percent-encoded into upstream URLs (no
 * traversal, no `:id`/`:idx` collision), optional params and wildcards, the
 * service URL's own query kept, X-Forwarded-*, request ids and traceparent.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startBackend, type Backend } from './helpers/backend.js'
import { startGateway } from './helpers/gateway.js'
import { rawRequest } from './helpers/client.js'
import type { GatewayConfig } from '../src/config/types.js'
import { traceparent, uuid } from '../src/server/forwarding.js'

/** The same service on a streaming route (one service) and a merged route (a second, merge:false). */
function both (path: string, svcUrl: string, extra: Backend): Record<string, unknown> {
  return {
    [path]: {
      GET: { services: { main: { type: 'http', url: svcUrl } } },
      POST: { services: { main: { type: 'http', url: svcUrl }, side: { type: 'http', url: extra.url + '/side', merge: false } } }
    }
  }
}

async function setup (t: TestContext, routes: (b: Backend, side: Backend) => Record<string, unknown>, server?: Record<string, unknown>): Promise<{ url: string, b: Backend, side: Backend }> {
  const b = await startBackend()
  const side = await startBackend()
  t.after(() => b.close())
  t.after(() => side.close())
  const { url } = await startGateway({ ...(server !== undefined ? { server } : {}), http: { routes: routes(b, side) } } as GatewayConfig, t)
  return { url, b, side }
}

test('params are percent-encoded into the upstream path: an encoded slash never climbs', async (t) => {
  const { url, b } = await setup(t, (b, side) => both('/files/:name', `${b.url}/files/:name`, side))
  for (const method of ['GET', 'POST']) {
    const res = await rawRequest(url, '/files/..%2F..%2Fadmin', { method, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) })
    assert.equal(res.status, 200, method)
  }
  assert.deepEqual(b.requests.map(r => r.url), ['/files/..%2F..%2Fadmin', '/files/..%2F..%2Fadmin'])
  assert.ok(b.requests.every(r => !r.url.includes('/admin') || r.url.includes('%2Fadmin')))
})

test('a ".." param is encoded as %2E%2E and never climbs', async (t) => {
  const { url, b } = await setup(t, (b, side) => both('/files/:name', `${b.url}/files/:name`, side))
  for (const path of ['/files/..', '/files/%2E%2E', '/files/.%2e', '/files/.']) {
    const res = await rawRequest(url, path)
    assert.equal(res.status, 200, path)
  }
  assert.deepEqual(b.requests.map(r => r.url), ['/files/%2E%2E', '/files/%2E%2E', '/files/%2E%2E', '/files/%2E'])
})

test(':id and :idx are substituted without a prefix collision', async (t) => {
  const { url, b } = await setup(t, (b, side) => both('/a/:id/:idx', `${b.url}/x/:idx/:id`, side))
  await (await fetch(`${url}/a/one/two`)).arrayBuffer()
  await (await fetch(`${url}/a/one/two`, { method: 'POST', body: 'x' })).arrayBuffer()
  assert.deepEqual(b.requests.map(r => r.url), ['/x/two/one', '/x/two/one'])
})

test('an optional param is substituted when present and empty when absent', async (t) => {
  const { url, b } = await setup(t, (b, side) => both('/opt/:id?', `${b.url}/o/:id`, side))
  assert.equal((await rawRequest(url, '/opt/5')).status, 200)
  assert.equal((await rawRequest(url, '/opt/a%20b')).status, 200)
  assert.equal((await rawRequest(url, '/opt')).status, 200)
  assert.equal(b.requests[0]!.url, '/o/5')
  assert.equal(b.requests[1]!.url, '/o/a%20b')
  assert.match(b.requests[2]!.url, /^\/o\/?$/)
})

test('a wildcard is substituted segment by segment, dot segments encoded', async (t) => {
  const { url, b } = await setup(t, (b, side) => both('/static/*', `${b.url}/assets/*`, side))
  assert.equal((await rawRequest(url, '/static/css/site.css')).status, 200)
  assert.equal((await rawRequest(url, '/static/../../etc/passwd')).status, 200)
  assert.equal((await rawRequest(url, '/static/a/../../b', { method: 'POST', body: 'x' })).status, 200)
  assert.deepEqual(b.requests.map(r => r.url), ['/assets/css/site.css', '/assets/%2E%2E/%2E%2E/etc/passwd', '/assets/a/%2E%2E/%2E%2E/b'])
})

test("the service URL's own query is kept and the client's query added", async (t) => {
  const { url, b } = await setup(t, (b, side) => ({
    ...both('/p', `${b.url}/p?key=1`, side),
    '/plain': { GET: { services: { main: { type: 'http', url: `${b.url}/plain` } } } }
  }))
  await (await fetch(`${url}/p?q=2`)).arrayBuffer()
  await (await fetch(`${url}/p?q=2&r=a%20b`, { method: 'POST', body: 'x' })).arrayBuffer()
  await (await fetch(`${url}/p`)).arrayBuffer()
  await (await fetch(`${url}/plain?z=9`)).arrayBuffer()
  assert.deepEqual(b.requests.map(r => r.url), ['/p?key=1&q=2', '/p?key=1&q=2&r=a%20b', '/p?key=1', '/plain?z=9'])
})

test('X-Forwarded-For/-Proto/-Host come from the socket; spoofed ones are ignored', async (t) => {
  const { url, b, side } = await setup(t, (b, side) => both('/fwd', `${b.url}/fwd`, side))
  const host = new URL(url).host
  const spoof = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6' }
  await (await fetch(`${url}/fwd`, { headers: spoof })).arrayBuffer()
  await (await fetch(`${url}/fwd`, { method: 'POST', body: 'x', headers: spoof })).arrayBuffer()
  const seen = [...b.requests, ...side.requests]
  assert.equal(seen.length, 3)
  for (const r of seen) {
    assert.equal(r.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(r.headers['x-forwarded-proto'], 'http')
    assert.equal(r.headers['x-forwarded-host'], host)
    assert.equal(r.headers.forwarded, undefined)
  }
})

test('a trusted proxy X-Forwarded-For is extended with the peer', async (t) => {
  const { url, b, side } = await setup(t, (b, side) => both('/fwd', `${b.url}/fwd`, side), { trustProxy: ['127.0.0.1'] })
  await (await fetch(`${url}/fwd`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).arrayBuffer()
  await (await fetch(`${url}/fwd`, { method: 'POST', body: 'x', headers: { 'x-forwarded-for': '203.0.113.7' } })).arrayBuffer()
  await (await fetch(`${url}/fwd`)).arrayBuffer()
  const seen = [...b.requests, ...side.requests].map(r => r.headers['x-forwarded-for'])
  assert.deepEqual(seen.sort(), ['127.0.0.1', '203.0.113.7, 127.0.0.1', '203.0.113.7, 127.0.0.1', '203.0.113.7, 127.0.0.1'].sort())
})

test('x-request-id is kept when valid, generated when absent or invalid, and answered', async (t) => {
  const { url, b } = await setup(t, (b, side) => both('/id', `${b.url}/id`, side))
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
  const kept = await fetch(`${url}/id`, { headers: { 'x-request-id': 'client-req-42' } })
  await kept.arrayBuffer()
  assert.equal(kept.headers.get('x-request-id'), 'client-req-42')
  assert.equal(b.requests[0]!.headers['x-request-id'], 'client-req-42')

  const keptPost = await fetch(`${url}/id`, { method: 'POST', body: 'x', headers: { 'x-request-id': 'client-req-43' } })
  await keptPost.arrayBuffer()
  assert.equal(b.requests[1]!.headers['x-request-id'], 'client-req-43')

  const absent = await fetch(`${url}/id`)
  await absent.arrayBuffer()
  assert.match(String(b.requests[2]!.headers['x-request-id']), uuid)
  assert.equal(absent.headers.get('x-request-id'), b.requests[2]!.headers['x-request-id'])

  for (const bad of ['has spaces in it', 'x'.repeat(300), '<script>']) {
    const res = await fetch(`${url}/id`, { headers: { 'x-request-id': bad } })
    await res.arrayBuffer()
    const sent = b.requests.at(-1)!.headers['x-request-id']
    assert.match(String(sent), uuid, bad)
    assert.equal(res.headers.get('x-request-id'), sent)
  }
})

test('traceparent is continued (same trace, new span) or created', async (t) => {
  const { url, b, side } = await setup(t, (b, side) => both('/trace', `${b.url}/trace`, side))
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parent = '00f067aa0ba902b7'
  await (await fetch(`${url}/trace`, { headers: { traceparent: `00-${trace}-${parent}-01` } })).arrayBuffer()
  await (await fetch(`${url}/trace`, { method: 'POST', body: 'x', headers: { traceparent: `00-${trace}-${parent}-01` } })).arrayBuffer()
  for (const r of [b.requests[0]!, b.requests[1]!, side.requests[0]!]) {
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(r.headers.traceparent))
    assert.ok(m, String(r.headers.traceparent))
    assert.equal(m[1], trace)
    assert.notEqual(m[2], parent)
  }
  // Both services of one request see the same span of the gateway's.
  assert.equal(b.requests[1]!.headers.traceparent, side.requests[0]!.headers.traceparent)

  await (await fetch(`${url}/trace`)).arrayBuffer()
  await (await fetch(`${url}/trace`, { headers: { traceparent: 'garbage' } })).arrayBuffer()
  const [a, c] = [b.requests[2]!, b.requests[3]!].map(r => /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(String(r.headers.traceparent)))
  assert.ok(a && c)
  assert.notEqual(a[1], trace)
  assert.notEqual(a[1], c[1])
  assert.notEqual(a[1], '0'.repeat(32))
})

test('generated request ids are random version 4 UUIDs (RFC 9562 layout), distinct across a large batch', () => {
  const seen = new Set<string>()
  const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
  // More than two 64 KiB pools of random bytes (4,096 ids each), so in-place refills are crossed.
  for (let i = 0; i < 10_000; i++) {
    const id = uuid()
    assert.match(id, v4)
    seen.add(id)
  }
  assert.equal(seen.size, 10_000)
  // Every hex digit shows up in every free position over the batch: no stuck bits.
  const digits = [...seen].map(id => id.replaceAll('-', ''))
  for (const pos of [0, 7, 13, 20, 31]) assert.equal(new Set(digits.map(d => d[pos])).size, 16, `position ${pos}`)
})

test('a failure after the pipeline (an answer head Node refuses to write) is a 500, and the gateway keeps serving', async (t) => {
  const b = await startBackend()
  t.after(() => b.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/bad-head': { GET: { onResponse: () => ({ status: 200, headers: { 'x-bad': 'line\nbreak' }, body: { ok: true } }), services: { s: { type: 'http', url: b.url } } } },
        '/fine': { GET: { services: { s: { type: 'http', url: b.url } } } }
      }
    }
  } as unknown as GatewayConfig, t)
  const bad = await fetch(`${url}/bad-head`)
  await bad.arrayBuffer()
  assert.equal(bad.status, 500)
  const fine = await fetch(`${url}/fine`)
  await fine.arrayBuffer()
  assert.equal(fine.status, 200)
})

test("a service's hop-by-hop headers, and those its Connection header names, never reach the client; the rest do, repeated ones kept", async (t) => {
  const b = await startBackend((_req, res) => {
    res.setHeader('Connection', 'keep-alive, X-Hop-Secret')
    res.setHeader('Keep-Alive', 'timeout=5')
    res.setHeader('X-Hop-Secret', 'only for the gateway')
    res.setHeader('Proxy-Authenticate', 'Basic')
    res.setHeader('Upgrade', 'h2c')
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/'])
    res.setHeader('X-Request-Id', 'the-service-own-id')
    res.setHeader('X-Custom', 'kept')
    res.setHeader('Content-Type', 'application/json')
    res.end('{"ok":true}')
  })
  t.after(() => b.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/pass': { GET: { services: { s: { type: 'http', url: b.url } } } },
        '/merged': { GET: { services: { s: { type: 'http', url: b.url }, t: { type: 'http', url: b.url, merge: false } } } }
      }
    }
  } as unknown as GatewayConfig, t)
  for (const path of ['/pass', '/merged']) {
    const res = await rawRequest(url, path, { headers: { 'x-request-id': 'client-id-7' } })
    assert.equal(res.status, 200, path)
    assert.equal(res.headers['x-hop-secret'], undefined, path)
    assert.equal(res.headers['proxy-authenticate'], undefined, path)
    assert.equal(res.headers.upgrade, undefined, path)
    assert.notEqual(res.headers['keep-alive'], 'timeout=5', path) // the gateway's own keep-alive, not the service's
    assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'], path)
    assert.equal(res.headers['x-request-id'], 'client-id-7', path)
    assert.equal(res.headers['x-custom'], 'kept', path)
    assert.deepEqual(JSON.parse(res.body.toString()), { ok: true }, path)
  }
})

test('a new traceparent has fresh random trace and span ids each time', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent(undefined))
    assert.ok(m)
    assert.ok(!seen.has(m[1]!) && !seen.has(m[2]!), 'an id came back twice')
    seen.add(m[1]!).add(m[2]!)
  }
})
