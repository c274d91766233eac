/**
 * PRODUCT §4.4, the state machine alone on fake timers (STYLE §7): what
 * opens it, the half-open single probe, generations, what counts as a failure,
 * and serializable state.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GatewayError } from '@switchyard/protocol'
import { BreakerMachine, type BreakerSettings, type Transition } from '../../src/policies/breaker/machine.js'
import { isBreakerRefusal, outcomeOf } from '../../src/policies/breaker/breaker.js'
import { parseCircuitBreaker } from '../../src/policies/breaker/options.js'

const base: BreakerSettings = { consecutiveFailures: undefined, failureRate: undefined, minimumCalls: 10, windowMs: 10_000, maxErrors: undefined, maxErrorsWindowMs: 0, openMs: 1000 }

function machine (settings: Partial<BreakerSettings>): { m: BreakerMachine, transitions: Transition[] } {
  const transitions: Transition[] = []
  const m = new BreakerMachine({ ...base, ...settings }, { onTransition: t => transitions.push(t) })
  return { m, transitions }
}

/** Admits one call and records its outcome. */
function call (m: BreakerMachine, outcome: 'success' | 'failure' | 'ignore'): boolean {
  const a = m.admit()
  if (!a.ok) return false
  m.record(a.permit, outcome)
  return true
}

test('N consecutive failures open it; a success in between starts the count again', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const { m, transitions } = machine({ consecutiveFailures: 3 })
  call(m, 'failure'); call(m, 'failure'); call(m, 'success'); call(m, 'failure'); call(m, 'failure')
  assert.equal(m.state, 'closed')
  call(m, 'ignore') // neither: the count stands
  call(m, 'failure')
  assert.equal(m.state, 'open')
  assert.deepEqual(transitions.map(x => [x.from, x.to, x.reason]), [['closed', 'open', '3 consecutive failures']])
  const refused = m.admit()
  assert.deepEqual(refused, { ok: false, retryAfterMs: 1000 })
  m.dispose()
})

test('a failure rate over the window opens it, once the window holds the minimum of calls', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const { m } = machine({ failureRate: 0.5, minimumCalls: 6, windowMs: 1000 })
  for (let i = 0; i < 4; i++) { call(m, 'failure'); call(m, 'success') }
  // 4 of 8 failed, but spread: the rate opens it only at the call that reaches 50 % with 6+ calls.
  assert.equal(m.state, 'open')
  m.dispose()

  const { m: m2 } = machine({ failureRate: 0.5, minimumCalls: 6, windowMs: 1000 })
  for (let i = 0; i < 5; i++) call(m2, 'failure')
  t.mock.timers.tick(1000) // those five leave the window
  for (let i = 0; i < 5; i++) call(m2, 'success')
  call(m2, 'failure')
  assert.equal(m2.state, 'closed') // 1 of 6 in the window
  m2.dispose()
})

test('Prism: maxErrors failures within duration open it; the same failures spread wider do not', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const spec = parseCircuitBreaker({ maxErrors: 3, duration: 1000 }, ['http', 'circuitBreaker'], [])!
  assert.equal(spec.settings.openMs, 1000) // Prism's duration is also how long it stays open
  const m = new BreakerMachine(spec.settings)
  call(m, 'failure'); t.mock.timers.tick(600); call(m, 'success'); call(m, 'failure'); t.mock.timers.tick(600)
  call(m, 'failure') // the first is now 1200 ms old: 2 within the duration
  assert.equal(m.state, 'closed')
  t.mock.timers.tick(100)
  call(m, 'failure')
  assert.equal(m.state, 'open')
  m.dispose()
})

test('open → half-open after openMs, on a timer; exactly one probe; its success closes it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const { m, transitions } = machine({ consecutiveFailures: 1, openMs: 1000 })
  call(m, 'failure')
  t.mock.timers.tick(999)
  assert.equal(m.state, 'open')
  assert.deepEqual(m.admit(), { ok: false, retryAfterMs: 1 })
  t.mock.timers.tick(1)
  assert.equal(transitions.at(-1)!.to, 'half-open') // without any request
  const admissions = Array.from({ length: 10 }, () => m.admit())
  assert.equal(admissions.filter(a => a.ok).length, 1)
  const probe = admissions.find(a => a.ok)!
  assert.ok(probe.ok && probe.permit.probe)
  m.record(probe.permit, 'success')
  assert.equal(m.state, 'closed')
  assert.deepEqual(transitions.map(x => x.to), ['open', 'half-open', 'closed'])
  m.dispose()
})

test('a failed probe opens it again; an ignored probe lets another through', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const { m } = machine({ consecutiveFailures: 1, openMs: 500 })
  call(m, 'failure')
  t.mock.timers.tick(500)
  const first = m.admit()
  assert.ok(first.ok)
  m.record(first.permit, 'ignore') // the client went away: no verdict
  assert.equal(m.state, 'half-open')
  const second = m.admit()
  assert.ok(second.ok && second.permit.probe)
  m.record(second.permit, 'failure')
  assert.equal(m.state, 'open')
  assert.deepEqual(m.admit(), { ok: false, retryAfterMs: 500 })
  m.dispose()
})

test('calls admitted before a change of state do not count after it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const { m } = machine({ consecutiveFailures: 2, openMs: 500 })
  const slow = m.admit() // in flight while the breaker opens
  assert.ok(slow.ok)
  call(m, 'failure'); call(m, 'failure')
  assert.equal(m.state, 'open')
  m.record(slow.permit, 'success') // an old success does not close it
  assert.equal(m.state, 'open')
  t.mock.timers.tick(500)
  const probe = m.admit()
  assert.ok(probe.ok)
  m.record(probe.permit, 'success')
  const late = { gen: 0, probe: false }
  m.record(late, 'failure') // an old failure does not count against the closed breaker
  assert.equal(m.toJSON().consecutiveFailures, 0)
  m.dispose()
})

test('state is serializable: toJSON round-trips through JSON as initialState', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  const { m } = machine({ consecutiveFailures: 2, failureRate: 0.9, minimumCalls: 100, openMs: 1000 })
  call(m, 'failure')
  const closed = JSON.parse(JSON.stringify(m)) as ReturnType<BreakerMachine['toJSON']>
  assert.equal(closed.state, 'closed')
  assert.equal(closed.consecutiveFailures, 1)
  const restored = new BreakerMachine(m.settings, { initialState: closed })
  call(restored, 'failure') // the second in a row
  assert.equal(restored.state, 'open')
  const open = JSON.parse(JSON.stringify(restored)) as ReturnType<BreakerMachine['toJSON']>
  assert.equal(open.openUntil, Date.now() + 1000)
  const again = new BreakerMachine(m.settings, { initialState: open })
  assert.equal(again.state, 'open')
  t.mock.timers.tick(1000)
  assert.equal(again.state, 'half-open')
  for (const x of [m, restored, again]) x.dispose()
})

test('failures are timeouts, transport errors and 5xx; not 4xx, not the client leaving, not a breaker refusal', () => {
  const err = (code: ConstructorParameters<typeof GatewayError>[0]): ReturnType<typeof outcomeOf> => outcomeOf({ ok: false, error: new GatewayError(code) })
  assert.equal(err('GW_ERR_UPSTREAM_TIMEOUT'), 'failure')
  assert.equal(err('GW_ERR_UPSTREAM_UNREACHABLE'), 'failure')
  assert.equal(err('GW_ERR_UPSTREAM_BAD_RESPONSE'), 'failure')
  assert.equal(err('GW_ERR_SERVICE_UNAVAILABLE'), 'failure')
  assert.equal(err('GW_ERR_CLIENT_CLOSED'), 'ignore')
  assert.equal(err('GW_ERR_CIRCUIT_OPEN'), 'ignore')
  assert.equal(err('GW_ERR_BODY_TOO_LARGE'), 'ignore')
  assert.equal(outcomeOf({ ok: true, value: { status: 500 } }), 'failure')
  assert.equal(outcomeOf({ ok: true, value: { status: 503 } }), 'failure')
  assert.equal(outcomeOf({ ok: true, value: { status: 404 } }), 'success')
  assert.equal(outcomeOf({ ok: true, value: { status: 429 } }), 'success')
  assert.equal(outcomeOf({ ok: true, value: { status: 200 } }), 'success')
  assert.equal(isBreakerRefusal({ status: 503 }), false)
})

test('options: Prism and Switchyard keys validated, with defaults', () => {
  const issues: Array<{ path: string, message: string }> = []
  assert.equal(parseCircuitBreaker({ maxErrors: 3, failureRate: 2, halfOpenProbes: 2, minimumCalls: 0, foo: 1 }, ['http', 'circuitBreaker'], issues), undefined)
  assert.deepEqual(issues.map(i => i.path).sort(), [
    'http.circuitBreaker.duration', 'http.circuitBreaker.failureRate', 'http.circuitBreaker.foo', 'http.circuitBreaker.halfOpenProbes', 'http.circuitBreaker.minimumCalls'
  ])
  const d = parseCircuitBreaker({}, ['x'], [])!
  assert.deepEqual(d.settings, { consecutiveFailures: 5, failureRate: 0.5, minimumCalls: 10, windowMs: 10_000, maxErrors: undefined, maxErrorsWindowMs: 0, openMs: 10_000 })
  assert.equal(parseCircuitBreaker('none', ['x'], []), undefined)
  const only = parseCircuitBreaker({ consecutiveFailures: 2 }, ['x'], [])!
  assert.equal(only.settings.failureRate, undefined) // a trigger given: no default rate
})
