/**
 * PRODUCT §2.4: bodies pass through byte-exact (JSON, form, text, binary,
 * multipart) on streaming and buffered routes; 413 over the limit with or
 * without Content-Length; malformed JSON where a hook needs it parsed → 400.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { startBackend, json, type Backend } from './helpers/backend.js'
import { startGateway, type TestGateway } from './helpers/gateway.js'
import { sha256 } from './helpers/client.js'
import type { GatewayConfig } from '../src/config/types.js'

function multipart (): { body: Buffer, contentType: string } {
  const boundary = '----switchyard' + randomBytes(8).toString('hex')
  const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]), randomBytes(4096)])
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhéllo wörld\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    binary,
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  return { body, contentType: `multipart/form-data; boundary=${boundary}` }
}

const mp = multipart()
const BODIES: Array<{ kind: string, contentType: string, body: Buffer }> = [
  // Whitespace, key order, duplicate keys, escapes and number forms that a re-serialization would change.
  { kind: 'json', contentType: 'application/json', body: Buffer.from('{ "z" :1,\n\t"a":  [1.0, 2e3 ,"\\u00e9"],"a":"dup" ,"n":null }  \n') },
  { kind: 'form', contentType: 'application/x-www-form-urlencoded', body: Buffer.from('b=2&a=1&a=3&sp=a+b&enc=%C3%A9%20x&empty=') },
  { kind: 'text', contentType: 'text/plain; charset=utf-8', body: Buffer.from('plain text, not JSON: p\u00e9\n\n  trailing  ') },
  { kind: 'binary', contentType: 'application/octet-stream', body: Buffer.concat([Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0x00]), randomBytes(64 * 1024)]) },
  { kind: 'multipart', contentType: mp.contentType, body: mp.body }
]

describe('bodies pass through byte-exact', () => {
  let main: Backend
  let side: Backend
  let gw: TestGateway
  before(async () => {
    main = await startBackend((_req, res) => json(res, 200, { ok: true }))
    side = await startBackend((_req, res) => json(res, 200, { side: true }))
    const svc = { type: 'http', url: `${main.url}/in` }
    gw = await startGateway({
      http: {
        routes: {
          '/stream': { POST: { services: { main: svc } } },
          '/buffered': { POST: { services: { main: svc, side: { type: 'http', url: `${side.url}/in`, merge: false } } } },
          '/merged': { POST: { services: { main: svc, side: { type: 'http', url: `${side.url}/in` } } } },
          // A hook that looks at the request but changes nothing: the bytes still pass untouched.
          '/hooked': { POST: { onRequest: () => undefined, services: { main: svc } } }
        }
      }
    } as unknown as GatewayConfig)
    assert.equal(gw.gw.routes().find(r => r.path === '/stream')!.mode, 'passthrough')
    assert.equal(gw.gw.routes().find(r => r.path === '/buffered')!.mode, 'buffered')
  })
  after(async () => {
    await gw.close()
    await main.close()
    await side.close()
  })

  for (const route of ['/stream', '/buffered', '/merged', '/hooked']) {
    for (const { kind, contentType, body } of BODIES) {
      test(`${kind} through ${route}`, async () => {
        const before = main.requests.length
        const sideBefore = side.requests.length
        const res = await fetch(gw.url + route, { method: 'POST', body, headers: { 'content-type': contentType } })
        assert.equal(res.status, 200)
        await res.arrayBuffer()
        const got = main.requests[before]!
        assert.equal(main.requests.length, before + 1)
        assert.equal(sha256(got.body), sha256(body))
        assert.equal(got.headers['content-type'], contentType)
        assert.equal(got.headers['content-length'], String(body.length))
        if (route === '/buffered' || route === '/merged') {
          const s = side.requests[sideBefore]!
          assert.equal(sha256(s.body), sha256(body))
          assert.equal(s.headers['content-type'], contentType)
        }
      })
    }
  }

  test('a chunked upload (no Content-Length) passes byte-exact too', async () => {
    const body = randomBytes(200 * 1024)
    for (const route of ['/stream', '/buffered']) {
      const before = main.requests.length
      const res = await fetch(gw.url + route, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new ReadableStream({
          start (c) {
            for (let i = 0; i < body.length; i += 16 * 1024) c.enqueue(body.subarray(i, i + 16 * 1024))
            c.close()
          }
        }),
        duplex: 'half'
      } as RequestInit)
      assert.equal(res.status, 200, route)
      await res.arrayBuffer()
      assert.equal(sha256(main.requests[before]!.body), sha256(body), route)
    }
  })
})

/** Sends a POST with node:http; `chunked` sends no Content-Length. Resolves with the status and body. */
async function post (url: string, body: Buffer, opts: { chunked: boolean, contentType?: string }): Promise<{ status: number, body: string }> {
  const u = new URL(url)
  const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/octet-stream' }
  if (!opts.chunked) headers['content-length'] = String(body.length)
  const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers, agent: false })
  // The gateway may answer 413 and close before it has read everything: that is fine.
  req.on('error', () => {})
  if (opts.chunked) { req.write(body.subarray(0, body.length >> 1)); req.end(body.subarray(body.length >> 1)) } else req.end(body)
  const [res] = await once(req, 'response') as [IncomingMessage]
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  return { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }
}

describe('body limits', () => {
  let b: Backend
  let other: Backend
  let gw: TestGateway
  before(async () => {
    b = await startBackend((_req, res) => json(res, 200, { ok: true }))
    other = await startBackend((_req, res) => json(res, 200, { other: true }))
    gw = await startGateway({
      server: { bodyLimitBytes: 4096 },
      http: {
        routes: {
          '/stream': { POST: { bodyLimitBytes: 1000, services: { a: { type: 'http', url: `${b.url}/s` } } } },
          '/buffered': { POST: { bodyLimitBytes: 1000, services: { a: { type: 'http', url: `${b.url}/b` }, o: { type: 'http', url: `${other.url}/b` } } } },
          '/server-limit': { POST: { services: { a: { type: 'http', url: `${b.url}/d` } } } },
          '/parsed': { POST: { onRequest: () => undefined, services: { a: { type: 'http', url: `${b.url}/p` } } } }
        }
      }
    } as unknown as GatewayConfig)
  })
  after(async () => {
    await gw.close()
    await b.close()
    await other.close()
  })

  for (const route of ['/stream', '/buffered']) {
    for (const chunked of [false, true]) {
      test(`413 GW_ERR_BODY_TOO_LARGE on ${route} ${chunked ? 'without' : 'with'} Content-Length`, async () => {
        const before = b.requests.length
        const ok = await post(gw.url + route, randomBytes(1000), { chunked })
        assert.equal(ok.status, 200)
        const res = await post(gw.url + route, randomBytes(3000), { chunked })
        assert.equal(res.status, 413)
        assert.equal(JSON.parse(res.body).error.code, 'GW_ERR_BODY_TOO_LARGE')
        // Only the body within the limit reached the service whole.
        const whole = b.requests.slice(before).filter(r => r.body.length > 1000)
        assert.equal(whole.length, 0)
      })
    }
  }

  test('the server-wide bodyLimitBytes applies where a route sets none', async () => {
    assert.equal((await post(gw.url + '/server-limit', randomBytes(4096), { chunked: false })).status, 200)
    const res = await post(gw.url + '/server-limit', randomBytes(5000), { chunked: true })
    assert.equal(res.status, 413)
    assert.equal(JSON.parse(res.body).error.code, 'GW_ERR_BODY_TOO_LARGE')
  })

  test('malformed JSON on a route that parses the body is 400 GW_ERR_BODY_MALFORMED; the next request is fine', async () => {
    const before = b.requests.length
    const bad = await post(gw.url + '/parsed', Buffer.from('{"a": 1,,}'), { chunked: false, contentType: 'application/json' })
    assert.equal(bad.status, 400)
    assert.equal(JSON.parse(bad.body).error.code, 'GW_ERR_BODY_MALFORMED')
    assert.equal(b.requests.length, before)
    const good = await post(gw.url + '/parsed', Buffer.from('{"a": 1}'), { chunked: false, contentType: 'application/json' })
    assert.equal(good.status, 200)
    assert.equal(b.requests.length, before + 1)
  })
})
