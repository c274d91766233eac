/**
 * GatewayError: a refusal (4xx) carries no stack trace (it is an answer the
 * gateway meant to give, and capturing one cost ~5 µs per error); a fault (5xx)
 * keeps its stack, and a cause keeps its own; Error.stackTraceLimit is left
 * as it was.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GatewayError, isGatewayError } from '../src/errors.js'

function frames (err: Error): string[] {
  return (err.stack ?? '').split('\n').slice(1).filter(l => l.trim().startsWith('at '))
}

test('a 4xx GatewayError has no stack frames; a 5xx one has them; the stack trace limit is restored', () => {
  const limit = Error.stackTraceLimit
  const refusal = new GatewayError('GW_ERR_RATE_LIMITED')
  assert.equal(refusal.statusCode, 429)
  assert.deepEqual(frames(refusal), [])
  assert.match(String(refusal.stack), /^GatewayError: /)
  assert.equal(Error.stackTraceLimit, limit)

  const fault = new GatewayError('GW_ERR_UPSTREAM_UNREACHABLE')
  assert.ok(fault.statusCode >= 500)
  assert.ok(frames(fault).length > 0, 'a fault keeps its stack')
  assert.equal(Error.stackTraceLimit, limit)
})

test('the status decides, including an overridden one; a cause keeps its own stack', () => {
  const asServerError = new GatewayError('GW_ERR_RATE_LIMITED', { statusCode: 503 })
  assert.ok(frames(asServerError).length > 0)
  const asClientError = new GatewayError('GW_ERR_INTERNAL', { statusCode: 400 })
  assert.deepEqual(frames(asClientError), [])

  const cause = new Error('the body was not JSON')
  const withCause = new GatewayError('GW_ERR_BODY_MALFORMED', { cause })
  assert.deepEqual(frames(withCause), [])
  assert.equal(withCause.cause, cause)
  assert.ok(frames(cause).length > 0)
  assert.ok(isGatewayError(withCause))
})
