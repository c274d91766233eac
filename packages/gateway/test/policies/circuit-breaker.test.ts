/**
 * PRODUCT §4.4 and §9.2 through a gateway, one instance, local state: a down
 * upstream trips the breaker; while open the answer is a fast 503 with
 * Retry-After and the upstream is not called; half-open lets exactly one
 * probe through under concurrent traffic and its success closes it; 4xx do
 * not count, timeouts do; the breaker's own 503s do not keep it open.
 * Checks made while a breaker is open use a long openMs; those that need it to
 * half-open use a short one and await its events, so no assertion depends on timing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { GatewayConfig } from '../../src/config/types.js'
import { breakerEvent, breakerIn, breakers, burst, countBy, FlakyBackend, gateway, get, probeWhileHeld, type Reply } from './limits-helpers.js'

/**
 * One HTTP service on the buffered path (`mergeField` makes the route parse its
 * answer), where the breaker wraps the service's invoke.
 */
function buffered (url: string, breaker: unknown, extra: Record<string, unknown> = {}): GatewayConfig {
  return {
    http: { routes: { '/b': { GET: { circuitBreaker: breaker, services: { backend: { type: 'http', url, mergeField: 'data', ...extra } } } } } }
  } as unknown as GatewayConfig
}

/**
 * A buffered route whose breaker opens after `failures` refused connections
 * (awaited through its event), with the backend answering again afterwards.
 */
async function openedThenRecovered (t: Parameters<typeof gateway>[1], failures: number, openMs: number): Promise<{ backend: FlakyBackend, url: string, gw: Awaited<ReturnType<typeof gateway>>['gw'] }> {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  await backend.down()
  const { url, gw } = await gateway(buffered(backend.url, { consecutiveFailures: failures, openMs }), t)
  const opened = breakerEvent(gw, 'backend', 'circuit.opened')
  await burst(failures, () => ({ url: `${url}/b` }))
  await opened
  await backend.up()
  return { backend, url, gw }
}

function code (r: Reply): string | undefined {
  try {
    return (JSON.parse(r.body) as { error?: { code?: string } }).error?.code
  } catch {
    return undefined
  }
}

test('a down upstream trips it; while open: a fast 503 with Retry-After, and the upstream is not called', { timeout: 60_000 }, async (t) => {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  await backend.down() // connection refused
  const { url, gw } = await gateway(buffered(backend.url, { consecutiveFailures: 3, openMs: 60_000 }), t)
  assert.equal(gw.routes()[0]!.mode, 'buffered')

  const failing = [await get(`${url}/b`), await get(`${url}/b`), await get(`${url}/b`)]
  assert.deepEqual(failing.map(r => [r.status, code(r)]), Array(3).fill([502, 'GW_ERR_UPSTREAM_UNREACHABLE']))
  assert.equal(breakers(gw).states().backend!.state, 'open')

  await backend.up() // back, but the breaker does not know yet
  const refused = await burst(10, () => ({ url: `${url}/b` }))
  for (const r of refused) {
    assert.equal(r.status, 503)
    assert.equal(code(r), 'GW_ERR_CIRCUIT_OPEN')
    const retry = Number(r.headers.get('retry-after'))
    assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`)
    assert.equal(r.headers.get('x-switchyard-failed-service'), 'backend')
    assert.equal((JSON.parse(r.body) as { error: { service: string } }).error.service, 'backend')
  }
  assert.equal(backend.hits, 0)
})

test('half-open lets exactly one probe through under concurrent traffic; its success closes the breaker', { timeout: 60_000 }, async (t) => {
  const { backend, url, gw } = await openedThenRecovered(t, 3, 300)
  await breakerIn(gw, 'backend', 'half-open') // after openMs, on the breaker's own timer
  const { replies, hitsWhileHeld } = await probeWhileHeld(backend, [`${url}/b`])
  assert.equal(hitsWhileHeld, 1)
  assert.deepEqual(countBy(replies), { 200: 1, 503: replies.length - 1 })
  for (const r of replies.filter(x => x.status === 503)) assert.equal(code(r), 'GW_ERR_CIRCUIT_OPEN')
  assert.equal(breakers(gw).states().backend!.state, 'closed')

  // Steady traffic flows again.
  const after = await burst(10, () => ({ url: `${url}/b` }))
  assert.deepEqual(countBy(after), { 200: 10 })
  assert.equal(backend.hits, 11)
})

test('4xx answers do not count as failures; 5xx answers do', { timeout: 60_000 }, async (t) => {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  const { url, gw } = await gateway(buffered(backend.url, { consecutiveFailures: 3, openMs: 60_000 }), t)
  backend.status = 404
  const notFound = await burst(10, () => ({ url: `${url}/b` }))
  assert.deepEqual(countBy(notFound), { 404: 10 })
  assert.equal(breakers(gw).states().backend!.state, 'closed')
  backend.status = 500
  for (let i = 0; i < 3; i++) assert.equal((await get(`${url}/b`)).status, 500)
  assert.equal(breakers(gw).states().backend!.state, 'open')
  assert.equal(code(await get(`${url}/b`)), 'GW_ERR_CIRCUIT_OPEN')
  assert.equal(backend.hits, 13)
})

test('timeouts count as failures', { timeout: 60_000 }, async (t) => {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  backend.hold() // never answers within the timeout
  const { url, gw } = await gateway(buffered(backend.url, { consecutiveFailures: 2, openMs: 60_000 }, { timeout: 200 }), t)
  assert.deepEqual((await burst(2, () => ({ url: `${url}/b` }))).map(code), ['GW_ERR_UPSTREAM_TIMEOUT', 'GW_ERR_UPSTREAM_TIMEOUT'])
  assert.equal(breakers(gw).states().backend!.state, 'open')
  backend.release()
})

test('the breaker\'s own 503s do not keep it open (Prism §9.2)', { timeout: 60_000 }, async (t) => {
  const { backend, url, gw } = await openedThenRecovered(t, 2, 1000)
  // Hammer it while open: refusals are 503s, and none of them counts as a failure.
  const hammered = await burst(50, () => ({ url: `${url}/b` }))
  const refused = hammered.filter(r => r.status === 503)
  assert.ok(refused.length > 0)
  for (const r of refused) assert.equal(code(r), 'GW_ERR_CIRCUIT_OPEN')
  // Should the burst outlast openMs, one probe closed it and the rest went through: every call the
  // backend saw is a 200 here, none is a refusal.
  assert.equal(backend.hits, hammered.filter(r => r.status === 200).length)
  if (breakers(gw).states().backend!.state !== 'closed') {
    await breakerIn(gw, 'backend', 'half-open')
    assert.equal((await get(`${url}/b`)).status, 200)
  }
  assert.equal(breakers(gw).states().backend!.state, 'closed')
  assert.deepEqual(countBy(await burst(5, () => ({ url: `${url}/b` }))), { 200: 5 })
})

test('Prism\'s shape: maxErrors within duration, errorStatus and errorBody; http-level config, a service may turn it off', { timeout: 60_000 }, async (t) => {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  backend.status = 502
  const { url, gw } = await gateway({
    http: {
      circuitBreaker: { maxErrors: 2, duration: 60_000, errorStatus: 503, errorBody: 'Busy.' },
      routes: {
        '/b': { GET: { services: { backend: { type: 'http', url: backend.url, mergeField: 'data' } } } },
        '/free': { GET: { services: { other: { type: 'http', url: backend.url, mergeField: 'data', circuitBreaker: 'none' } } } }
      }
    }
  } as unknown as GatewayConfig, t)
  await burst(2, () => ({ url: `${url}/b` }))
  const busy = await get(`${url}/b`)
  assert.equal(busy.status, 503)
  assert.equal(busy.body, 'Busy.')
  assert.ok(Number(busy.headers.get('retry-after')) > 50)
  assert.deepEqual(Object.keys(breakers(gw).states()), ['backend'])
  const free = await burst(3, () => ({ url: `${url}/free` }))
  assert.deepEqual(countBy(free), { 502: 3 }) // no breaker: every call reaches the service
  assert.equal(backend.hits, 5)
})

test('states(): every breaker with its service, routes and serializable state; one breaker per service and upstream', { timeout: 60_000 }, async (t) => {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  const svc = { backend: { type: 'http', url: backend.url, mergeField: 'data' } }
  const { url, gw } = await gateway({
    http: {
      circuitBreaker: { consecutiveFailures: 1, openMs: 60_000 },
      routes: { '/one': { GET: { services: svc } }, '/two': { POST: { services: svc } } }
    }
  } as unknown as GatewayConfig, t)
  const states = breakers(gw).states()
  assert.deepEqual(Object.keys(states), ['backend'])
  assert.deepEqual(states.backend!.routes, ['GET /one', 'POST /two'])
  assert.equal(states.backend!.shared, false)
  backend.status = 500
  await get(`${url}/one`)
  // Opened through /one, it refuses /two too: the same upstream is down for both.
  const two = await get(`${url}/two`, {}, { method: 'POST' })
  assert.equal(code(two), 'GW_ERR_CIRCUIT_OPEN')
  const open = JSON.parse(JSON.stringify(breakers(gw).states())) as Record<string, { state: string, openUntil: number, retryAfterMs: number }>
  assert.equal(open.backend!.state, 'open')
  assert.ok(open.backend!.openUntil > Date.now())
  assert.ok(open.backend!.retryAfterMs > 0)
  assert.match(await gw.metrics.text(), /switchyard_circuit_state\{breaker="backend",service="backend"\} 2/)
})

test('a streaming route (one HTTP service) is covered by its breaker too', { timeout: 60_000 }, async (t) => {
  const backend = await FlakyBackend.start()
  t.after(() => backend.down())
  await backend.down()
  const route = (name: string, openMs: number): Record<string, unknown> => ({ GET: { circuitBreaker: { consecutiveFailures: 2, openMs }, services: { [name]: { type: 'http', url: backend.url } } } })
  const { url, gw } = await gateway({ http: { routes: { '/long': route('long', 60_000), '/short': route('short', 300) } } } as unknown as GatewayConfig, t)
  assert.deepEqual(gw.routes().map(r => r.mode), ['passthrough', 'passthrough'])
  const shortOpened = breakerEvent(gw, 'short', 'circuit.opened')
  await burst(2, () => ({ url: `${url}/long` }))
  await burst(2, () => ({ url: `${url}/short` }))
  assert.equal(breakers(gw).states().long!.state, 'open')
  await shortOpened
  await backend.up()

  const refused = await get(`${url}/long`)
  assert.equal(refused.status, 503)
  assert.equal(code(refused), 'GW_ERR_CIRCUIT_OPEN')
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
  assert.equal(backend.hits, 0)

  await breakerIn(gw, 'short', 'half-open')
  const { replies, hitsWhileHeld } = await probeWhileHeld(backend, [`${url}/short`])
  assert.equal(hitsWhileHeld, 1)
  assert.equal(countBy(replies)[200], 1)
  assert.equal(breakers(gw).states().short!.state, 'closed')
})
