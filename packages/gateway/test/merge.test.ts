/**
 * PRODUCT §3.5: object bodies merged in config order (not arrival order),
 * `mergeField` nests, `merge: false` calls without merging, an optional
 * service's failure gives a partial response that says so.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { startBackend, json } from './helpers/backend.js'
import { startGateway } from './helpers/gateway.js'
import type { GatewayConfig } from '../src/config/types.js'

test('merge order is config order: the later service wins even when it answers first', async (t) => {
  // `first` answers only once `second` has finished its answer, for every request.
  const secondDone: Array<() => void> = []
  const waiting: Array<Promise<void>> = []
  const nextGate = (): void => { waiting.push(new Promise<void>(resolve => secondDone.push(resolve))) }
  nextGate(); nextGate()
  const order: string[] = []
  const first = await startBackend(async (_req, res) => {
    await waiting.shift()
    order.push('first')
    json(res, 200, { shared: 'first', onlyFirst: 1, nested: { from: 'first' } })
  })
  const second = await startBackend((_req, res: ServerResponse) => {
    res.once('finish', () => secondDone.shift()!())
    order.push('second')
    json(res, 200, { shared: 'second', onlySecond: 2, nested: { from: 'second' } })
  })
  t.after(() => first.close())
  t.after(() => second.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/ab': { GET: { services: { first: { type: 'http', url: first.url }, second: { type: 'http', url: second.url } } } },
        // Same services declared the other way round: now `first` is later in config and wins.
        '/ba': { GET: { services: { second: { type: 'http', url: second.url }, first: { type: 'http', url: first.url } } } }
      }
    }
  } as GatewayConfig, t)

  const ab = await fetch(`${url}/ab`)
  assert.equal(ab.status, 200)
  assert.deepEqual(await ab.json(), { shared: 'second', onlyFirst: 1, onlySecond: 2, nested: { from: 'second' } })
  assert.deepEqual(order, ['second', 'first'])

  const ba = await fetch(`${url}/ba`)
  assert.deepEqual(await ba.json(), { shared: 'first', onlyFirst: 1, onlySecond: 2, nested: { from: 'first' } })
  assert.deepEqual(order, ['second', 'first', 'second', 'first'])
})

test('mergeField nests a service body under its key', async (t) => {
  const users = await startBackend((_req, res) => json(res, 200, { id: 7, name: 'Ada' }))
  const orders = await startBackend((_req, res) => json(res, 200, [{ order: 1 }, { order: 2 }]))
  const flat = await startBackend((_req, res) => json(res, 200, { top: true }))
  t.after(() => users.close())
  t.after(() => orders.close())
  t.after(() => flat.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/profile': {
          GET: {
            services: {
              users: { type: 'http', url: users.url, mergeField: 'user' },
              orders: { type: 'http', url: orders.url, mergeField: 'orders' },
              flat: { type: 'http', url: flat.url }
            }
          }
        },
        '/solo': { GET: { services: { users: { type: 'http', url: users.url, mergeField: 'user' } } } }
      }
    }
  } as GatewayConfig, t)
  const res = await fetch(`${url}/profile`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /application\/json/)
  assert.deepEqual(await res.json(), { user: { id: 7, name: 'Ada' }, orders: [{ order: 1 }, { order: 2 }], top: true })
  const solo = await fetch(`${url}/solo`)
  assert.deepEqual(await solo.json(), { user: { id: 7, name: 'Ada' } })
})

test('merge: false calls the service but leaves its body out', async (t) => {
  const main = await startBackend((_req, res) => json(res, 200, { main: true }))
  const audit = await startBackend((_req, res) => json(res, 200, { audit: 'secret', main: false }, { 'x-audit': 'yes' }))
  t.after(() => main.close())
  t.after(() => audit.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/m': { POST: { services: { main: { type: 'http', url: main.url }, audit: { type: 'http', url: `${audit.url}/audit`, merge: false } } } },
        // With a second merged service the route parses and merges: audit still stays out.
        '/m2': { POST: { services: { main: { type: 'http', url: main.url }, other: { type: 'http', url: main.url, mergeField: 'other' }, audit: { type: 'http', url: `${audit.url}/audit`, merge: false } } } }
      }
    }
  } as GatewayConfig, t)
  const res = await fetch(`${url}/m`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { main: true })
  assert.equal(res.headers.get('x-audit'), null)
  const res2 = await fetch(`${url}/m2`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
  assert.deepEqual(await res2.json(), { main: true, other: { main: true } })
  assert.equal(audit.requests.length, 2)
  assert.deepEqual(audit.requests.map(r => [r.method, r.url, r.body.toString()]), [['POST', '/audit', '{"a":1}'], ['POST', '/audit', '{"a":1}']])
})

test('an optional service that fails gives a partial 200 naming it in x-switchyard-partial', async (t) => {
  const users = await startBackend((_req, res) => json(res, 200, { name: 'Ada' }))
  const recs = await startBackend((_req, res) => json(res, 500, { boom: true }))
  const ads = await startBackend((_req, res) => json(res, 503, { down: true }))
  t.after(() => users.close())
  t.after(() => recs.close())
  t.after(() => ads.close())
  const { url } = await startGateway({
    http: {
      routes: {
        '/home': {
          GET: {
            services: {
              users: { type: 'http', url: users.url },
              recs: { type: 'http', url: recs.url, optional: true, mergeField: 'recs' },
              ads: { type: 'http', url: ads.url, optional: true }
            }
          }
        },
        '/required': { GET: { services: { users: { type: 'http', url: users.url }, recs: { type: 'http', url: recs.url } } } },
        '/all-ok': { GET: { services: { users: { type: 'http', url: users.url }, again: { type: 'http', url: users.url, optional: true, mergeField: 'again' } } } }
      }
    }
  } as GatewayConfig, t)
  const res = await fetch(`${url}/home`)
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { name: 'Ada' })
  const partial = (res.headers.get('x-switchyard-partial') ?? '').split(',').map(s => s.trim()).sort()
  assert.deepEqual(partial, ['ads', 'recs'])

  // Without optional the same failure fails the request, naming the service.
  const req = await fetch(`${url}/required`)
  assert.equal(req.status, 500)
  assert.equal((await req.json() as { error: { service: string } }).error.service, 'recs')
  assert.equal(req.headers.get('x-switchyard-partial'), null)

  const ok = await fetch(`${url}/all-ok`)
  assert.equal(ok.headers.get('x-switchyard-partial'), null)
  assert.deepEqual(await ok.json(), { name: 'Ada', again: { name: 'Ada' } })
})

test('a "__proto__" key in a later service\'s body is merged as data and never becomes the merged body\'s prototype', async (t) => {
  const a = await startBackend((_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}')
  })
  const b = await startBackend((_req, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"b":2,"__proto__":{"fromB":true}}')
  })
  t.after(() => a.close())
  t.after(() => b.close())
  const { url } = await startGateway({
    http: { routes: { '/m': { GET: { services: { a: { type: 'http', url: a.url }, b: { type: 'http', url: b.url } } } } } }
  } as GatewayConfig, t)
  const res = await fetch(`${url}/m`)
  assert.equal(res.status, 200)
  // JSON.parse gives the key back as an own property.
  const text = await res.text()
  const body = JSON.parse(text) as Record<string, unknown>
  assert.deepEqual(Object.keys(body).sort(), ['__proto__', 'a', 'b'])
  assert.deepEqual(Object.getOwnPropertyDescriptor(body, '__proto__')?.value, { fromB: true })
})
