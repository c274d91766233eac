import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bodyBytes, bodyJson, bodyText, binaryResponse, errorResponse, GatewayError, serve, type ServeOptions } from '../src/index.js'
import { parseMessage } from '../src/message.js'
import { normalizeResponse } from '../src/runner.js'

const handler = async (): Promise<Record<string, never>> => ({})

test('serve() refuses bad options before connecting, naming the option', async () => {
  const cases: Array<[Partial<ServeOptions>, RegExp]> = [
    [{ handler, channel: 'c' }, /`service`/],
    [{ service: 's', channel: 'c' }, /`handler`/],
    [{ service: 's', handler }, /exactly one of `channel`/],
    [{ service: 's', handler, channel: 'c', stream: true }, /exactly one of `channel`/],
    [{ service: 's', handler, stream: true, concurrency: 0 }, /`concurrency` must be an integer ≥ 1/],
    [{ service: 's', handler, stream: true, claimIdleMs: 1.5 }, /`claimIdleMs`/],
    [{ service: 's', handler, stream: '' }, /`stream`/]
  ]
  for (const [options, message] of cases) {
    await assert.rejects(serve({ redis: 'redis://127.0.0.1:1', ...options } as ServeOptions), (err: Error) => err instanceof TypeError && message.test(err.message))
  }
})

test('body helpers decode every body form of PROTOCOL §1.2', () => {
  const bytes = Buffer.from([0, 255, 10])
  assert.deepEqual(bodyBytes({ body: bytes.toString('base64'), bodyEncoding: 'base64' }), bytes)
  assert.deepEqual(bodyBytes({ body: 'héllo' }), Buffer.from('héllo'))
  assert.deepEqual(bodyBytes({ body: { a: 1 } }), Buffer.from('{"a":1}'))
  assert.equal(bodyBytes({}), undefined)
  assert.equal(bodyText({ body: Buffer.from('hi').toString('base64'), bodyEncoding: 'base64' }), 'hi')
  assert.equal(bodyText({ body: 'plain' }), 'plain')
  assert.deepEqual(bodyJson({ body: { a: [1] } }), { a: [1] })
  assert.deepEqual(bodyJson({ body: '{"b":2}' }), { b: 2 })
  assert.deepEqual(bodyJson({ body: Buffer.from('[3]').toString('base64'), bodyEncoding: 'base64' }), [3])
  assert.throws(() => bodyJson({ body: 'not json' }), SyntaxError)
  assert.deepEqual(binaryResponse(Buffer.from([1, 2]), { contentType: 'image/png' }), { contentType: 'image/png', body: 'AQI=', bodyEncoding: 'base64' })
})

test('responses: byte bodies become base64; bad shapes and statuses are refused', () => {
  assert.deepEqual(normalizeResponse({ body: new Uint8Array([1, 2]) }), { body: 'AQI=', bodyEncoding: 'base64' })
  assert.deepEqual(normalizeResponse(undefined), {})
  assert.throws(() => normalizeResponse('text'), TypeError)
  assert.throws(() => normalizeResponse([]), TypeError)
  assert.throws(() => normalizeResponse({ status: 1000 }), TypeError)
  assert.deepEqual(errorResponse(new Error('x')), { status: 500, body: { error: { code: 'GW_ERR_SERVICE_HANDLER', message: 'x' } } })
  assert.deepEqual(errorResponse('a string'), { status: 500, body: { error: { code: 'GW_ERR_SERVICE_HANDLER', message: 'The service handler threw a value that is not an Error' } } })
  assert.deepEqual(errorResponse(new GatewayError('GW_ERR_RATE_LIMITED', { data: { limit: 3 } })), { status: 429, body: { error: { limit: 3, code: 'GW_ERR_RATE_LIMITED', message: 'Too many requests' } } })
})

test('messages: requests, rollbacks and every kind of malformed input', () => {
  const request = { path: '/a', method: 'GET', params: {}, query: {}, headers: {} }
  const ok = parseMessage(JSON.stringify({ type: 'request', id: '1', request, responseChannel: 'r', deadline: 5, extra: true }))
  assert.ok(ok.ok && ok.message.type === 'request' && ok.message.deadline === 5)
  const rb = parseMessage(JSON.stringify({ type: 'rollback', id: '1', request }))
  assert.ok(rb.ok && rb.message.type === 'rollback')
  // Missing containers are filled so handlers can read them.
  const bare = parseMessage(JSON.stringify({ type: 'request', id: '1', request: { path: '/b' }, responseChannel: 'r' }))
  assert.ok(bare.ok)
  assert.deepEqual(bare.message.request, { path: '/b', method: 'GET', params: {}, query: {}, headers: {} })
  // Extensions of the wrong type are ignored, not fatal.
  const odd = parseMessage(JSON.stringify({ type: 'request', id: '1', request, responseChannel: 'r', deadline: 'soon' }))
  assert.ok(odd.ok && odd.message.type === 'request' && odd.message.deadline === undefined)
  for (const raw of ['', 'x', '1', '"s"', 'null', '[]', '{}', '{"id":""}', '{"id":"1"}', '{"id":"1","request":{}}', '{"type":"request","id":"1","request":{}}', '{"type":"request","id":"1","request":[],"responseChannel":"r"}']) {
    assert.equal(parseMessage(raw).ok, false, raw)
  }
})
