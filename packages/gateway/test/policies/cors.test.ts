/**
 * CORS (PRODUCT §4.5): preflights answered by the gateway without calling a
 * service, allowed origins get CORS headers on every answer (errors too),
 * other origins get none, and the gateway's settings replace a service's.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { GatewayError, isGatewayError } from '@switchyard/protocol'
import { createGateway } from '../../src/gateway.js'
import type { GatewayConfig, RouteConfigT } from '../../src/config/types.js'
import { Metrics } from '../../src/metrics.js'
import type { GatewayRequest } from '../../src/pipeline/types.js'
import { corsPreflight } from '../../src/policies/cors.js'
import type { PolicyDeps } from '../../src/policies/types.js'
import { startBackend, json, type Backend } from '../helpers/backend.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'

const SHOP = 'https://shop.example'
const UPSTREAM_ACAO = 'https://upstream.example'
const silent = pino({ level: 'silent' })

interface Answer { status: number, headers: Headers, text: string }

async function call (url: string, method: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { method, headers })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function preflight (url: string, origin: string, method: string, requestHeaders?: string): Promise<Answer> {
  return call(url, 'OPTIONS', { origin, 'access-control-request-method': method, ...(requestHeaders !== undefined ? { 'access-control-request-headers': requestHeaders } : {}) })
}

function corsHeaderNames (h: Headers): string[] {
  return [...h.keys()].filter(k => k.startsWith('access-control-'))
}

function varyOf (h: Headers): string[] {
  return (h.get('vary') ?? '').split(',').map(s => s.trim().toLowerCase()).filter(s => s !== '')
}

describe('CORS through the gateway', () => {
  let b: Backend
  let gw: TestGateway
  before(async () => {
    // The service sets CORS headers of its own; the gateway's settings must win over them.
    b = await startBackend((req, res) => json(res, 200, { method: req.method, url: req.url }, {
      'access-control-allow-origin': UPSTREAM_ACAO,
      vary: 'Accept-Encoding',
      'x-total-count': '3'
    }))
    const svc = { a: { type: 'http', url: b.url } }
    const strict = {
      origin: [SHOP, /^https:\/\/[a-z]+\.shop\.example$/],
      credentials: true,
      allowMethods: ['GET', 'PUT'],
      allowHeaders: ['content-type', 'authorization', 'x-trace'],
      exposeHeaders: ['x-total-count'],
      maxAge: 600
    }
    gw = await startGateway({
      cors: { origin: '*', allowMethods: 'GET,HEAD,PUT,POST,DELETE,PATCH' }, // Prism's docs example
      http: {
        routes: {
          '/star': { ALL: { services: svc } },
          '/strict': { ALL: { cors: strict, services: svc } },
          '/reflect': { GET: { cors: { origin: SHOP }, services: svc }, OPTIONS: { cors: { origin: SHOP }, services: svc } },
          '/fn': { ALL: { cors: { origin: (ctx: { get: (n: string) => string }) => ctx.get('Origin').endsWith('.partner.example') }, services: svc } },
          '/off': { GET: { cors: false, services: svc } },
          '/auth': { ALL: { cors: strict, authentication: { type: 'jwt', key: 'a-shared-secret-of-at-least-32-bytes!!' }, services: svc } }
        }
      }
    } as unknown as GatewayConfig)
  })
  after(async () => {
    await gw.close()
    await b.close()
  })

  test('a preflight from an allowed origin is answered 204 by the gateway, without calling the service', async () => {
    const before = b.requests.length
    const r = await preflight(`${gw.url}/strict`, SHOP, 'PUT', 'Content-Type, X-Trace')
    assert.equal(r.status, 204, r.text)
    assert.equal(r.headers.get('access-control-allow-origin'), SHOP)
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true')
    assert.equal(r.headers.get('access-control-allow-methods'), 'GET,PUT')
    assert.equal(r.headers.get('access-control-allow-headers'), 'content-type,authorization,x-trace')
    assert.equal(r.headers.get('access-control-max-age'), '600')
    assert.ok(varyOf(r.headers).includes('origin'))
    assert.equal(b.requests.length, before, 'no service call for a preflight')
    const sub = await preflight(`${gw.url}/strict`, 'https://admin.shop.example', 'GET')
    assert.equal(sub.status, 204)
    assert.equal(sub.headers.get('access-control-allow-origin'), 'https://admin.shop.example')
  })

  test('a preflight from another origin, or for a method or header not allowed, is a 403 GW_ERR_CORS_REJECTED with no CORS headers', async () => {
    const before = b.requests.length
    for (const [origin, method, hdrs] of [
      ['https://evil.example', 'GET', undefined],
      ['https://shop.example.evil.example', 'GET', undefined],
      [SHOP, 'DELETE', undefined],
      [SHOP, 'PUT', 'x-not-listed']
    ] as const) {
      const r = await preflight(`${gw.url}/strict`, origin, method, hdrs)
      assert.equal(r.status, 403, `${origin} ${method} ${hdrs ?? ''}: ${r.text}`)
      assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, 'GW_ERR_CORS_REJECTED')
      assert.deepEqual(corsHeaderNames(r.headers), [])
    }
    assert.equal(b.requests.length, before)
  })

  test('an actual request from an allowed origin gets the gateway\'s CORS headers, replacing the service\'s', async () => {
    const r = await call(`${gw.url}/strict`, 'GET', { origin: SHOP })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('access-control-allow-origin'), SHOP)
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true')
    assert.equal(r.headers.get('access-control-expose-headers'), 'x-total-count')
    assert.deepEqual(varyOf(r.headers), ['accept-encoding', 'origin'])
    assert.equal(r.headers.get('x-total-count'), '3')
  })

  test('an actual request from another origin still gets its answer, with no CORS headers at all', async () => {
    const r = await call(`${gw.url}/strict`, 'GET', { origin: 'https://evil.example' })
    assert.equal(r.status, 200)
    assert.deepEqual(corsHeaderNames(r.headers), [])
    assert.ok(varyOf(r.headers).includes('origin'))
    const plain = await call(`${gw.url}/strict`, 'GET')
    assert.deepEqual(corsHeaderNames(plain.headers), [], 'a request without Origin gets none either')
    assert.ok(varyOf(plain.headers).includes('origin'))
  })

  test('Prism\'s top-level cors with origin "*" applies to routes without their own', async () => {
    const pre = await preflight(`${gw.url}/star`, 'https://anyone.example', 'DELETE')
    assert.equal(pre.status, 204)
    assert.equal(pre.headers.get('access-control-allow-origin'), '*')
    assert.equal(pre.headers.get('access-control-allow-methods'), 'GET,HEAD,PUT,POST,DELETE,PATCH')
    const r = await call(`${gw.url}/star`, 'GET', { origin: 'https://anyone.example' })
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
    assert.ok(!varyOf(r.headers).includes('origin'), '"*" does not depend on the origin')
  })

  test('without allowHeaders the requested headers are allowed and Vary says so; a plain OPTIONS still reaches the service', async () => {
    const before = b.requests.length
    const pre = await preflight(`${gw.url}/reflect`, SHOP, 'GET', 'x-a, X-B')
    assert.equal(pre.status, 204)
    assert.equal(pre.headers.get('access-control-allow-headers'), 'x-a,x-b')
    assert.deepEqual(varyOf(pre.headers), ['origin', 'access-control-request-headers'])
    assert.equal(b.requests.length, before)
    const plain = await call(`${gw.url}/reflect`, 'OPTIONS', { origin: SHOP })
    assert.equal(plain.status, 200)
    assert.equal((JSON.parse(plain.text) as { method: string }).method, 'OPTIONS')
    assert.equal(plain.headers.get('access-control-allow-origin'), SHOP)
  })

  test('an origin function decides per request', async () => {
    const ok = await call(`${gw.url}/fn`, 'GET', { origin: 'https://app.partner.example' })
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.partner.example')
    const no = await call(`${gw.url}/fn`, 'GET', { origin: 'https://app.other.example' })
    assert.equal(no.headers.get('access-control-allow-origin'), null)
  })

  test('cors: false on a route turns the global settings off (the service\'s own headers pass)', async () => {
    const r = await call(`${gw.url}/off`, 'GET', { origin: 'https://anyone.example' })
    assert.equal(r.headers.get('access-control-allow-origin'), UPSTREAM_ACAO)
  })

  test('an authentication refusal carries CORS headers, so the page can read the 401', async () => {
    const r = await call(`${gw.url}/auth`, 'GET', { origin: SHOP })
    assert.equal(r.status, 401)
    assert.equal(r.headers.get('access-control-allow-origin'), SHOP)
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true')
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="switchyard"')
    const pre = await preflight(`${gw.url}/auth`, SHOP, 'GET', 'authorization')
    assert.equal(pre.status, 204, 'a preflight is answered before authentication')
  })
})

describe('corsPreflight: the handler for paths without an OPTIONS route', () => {
  function deps (config: GatewayConfig): PolicyDeps {
    return { log: silent, metrics: new Metrics(), config, instanceId: 't', prefix: 't', redis: () => undefined, onClose: () => {}, provide: () => {} }
  }
  function fakeRequest (headers: Record<string, string>, remoteAddress = '127.0.0.1'): GatewayRequest {
    const fields = { id: 'r1', traceparent: '', method: 'OPTIONS', route: '/x', path: '/x', rawQuery: '', params: {}, remotePort: 1 }
    const forwarding = { forwardedFor: remoteAddress, forwardedProto: 'http', forwardedHost: undefined }
    return { ...fields, ...forwarding, headers, remoteAddress, body: { kind: 'none' }, signal: new AbortController().signal, log: silent }
  }
  const route = (extra: Record<string, unknown>): RouteConfigT => ({ services: { a: { type: 'http', url: 'http://127.0.0.1:9' } }, ...extra }) as unknown as RouteConfigT

  test('answers the preflight with the GET route\'s CORS and IP list, and is undefined without CORS', async () => {
    const config = { http: { routes: {} } } as unknown as GatewayConfig
    const target = { path: '/x', method: 'GET', route: route({ cors: { origin: SHOP }, allowList: { disallowed: ['10.0.0.0/8'] } }) }
    const handler = corsPreflight(target, deps(config))
    assert.ok(handler !== undefined)
    const res = await handler(fakeRequest({ origin: SHOP, 'access-control-request-method': 'GET' }))
    assert.equal(res.status, 204)
    assert.equal(res.headers['access-control-allow-origin'], SHOP)
    const refused = await handler(fakeRequest({ origin: 'https://evil.example', 'access-control-request-method': 'GET' }))
    assert.equal(refused.status, 403)
    await assert.rejects(handler(fakeRequest({ origin: SHOP, 'access-control-request-method': 'GET' }, '10.1.2.3')), (e: unknown) => isGatewayError(e) && e.code === 'GW_ERR_IP_FORBIDDEN')
    assert.equal(corsPreflight({ path: '/x', method: 'GET', route: route({}) }, deps(config)), undefined)
  })
})

describe('CORS options are checked at start', () => {
  function startError (config: Record<string, unknown>): GatewayError {
    try {
      createGateway(config as unknown as GatewayConfig, { logger: silent })
    } catch (err) {
      assert.ok(err instanceof GatewayError, String(err))
      return err
    }
    assert.fail('createGateway accepted the config')
  }
  const svc = { a: { type: 'http', url: 'http://127.0.0.1:9/x' } }

  test('a malformed origin is reported with its path', () => {
    const err = startError({ http: { routes: { '/x': { GET: { cors: { origin: [SHOP, 'shop.example/path'] }, services: svc } } } } })
    assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
    assert.ok(err.message.includes('http.routes["/x"].GET.cors.origin[1]'), err.message)
  })

  test('the top-level cors is reported at cors.*', () => {
    const err = startError({ cors: { origin: '*', maxAge: -1, allowedMethods: 'GET' }, http: { routes: { '/x': { GET: { services: svc } } } } })
    assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
    assert.ok(err.message.includes('cors.maxAge'), err.message)
    assert.ok(err.message.includes('cors.allowedMethods: unknown key'), err.message)
  })
})
