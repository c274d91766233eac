/**
 * A request that reaches a kept-alive socket after the gateway began to close
 * (PRODUCT §6.7): the request in flight finishes, and the next one on that
 * socket is refused with 503 GW_ERR_SHUTTING_DOWN and `Connection: close`,
 * with a request id, rather than fastify's generic answer or a reset.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { createGateway } from '../src/gateway.js'
import { startBackend, json } from './helpers/backend.js'
import type { GatewayConfig } from '../src/config/types.js'

/** Resolves once nothing accepts connections on the port any more (the close has begun). */
async function refused (port: number): Promise<void> {
  for (;;) {
    const s = connect(port, '127.0.0.1')
    const open = await new Promise<boolean>(resolve => {
      s.once('connect', () => resolve(true))
      s.once('error', () => resolve(false)) // refused, or reset by a server that is closing
    })
    s.destroy()
    if (!open) return
    await new Promise(resolve => setImmediate(resolve))
  }
}

/** Reads from the socket until `count` complete responses (head + Content-Length body) arrived, or it closed. */
async function responses (socket: Socket, count: number): Promise<string[]> {
  let buf = ''
  const out: string[] = []
  socket.setEncoding('latin1')
  for await (const chunk of socket) {
    buf += chunk as string
    for (;;) {
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) break
      const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0)
      if (buf.length < end + 4 + length) break
      out.push(buf.slice(0, end + 4 + length))
      buf = buf.slice(end + 4 + length)
    }
    if (out.length >= count) break
  }
  return out
}

test('during shutdown, the next request on a kept-alive socket gets 503 GW_ERR_SHUTTING_DOWN with Connection: close', async (t) => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  let arrived!: () => void
  const first = new Promise<void>(resolve => { arrived = resolve })
  const b = await startBackend(async (_req, res) => { arrived(); await held; json(res, 200, { ok: true }) })
  t.after(() => b.close())
  const gw = createGateway({ logging: { level: 'silent' }, http: { routes: { '/slow': { GET: { services: { s: { type: 'http', url: b.url } } } } } } } as unknown as GatewayConfig)
  const url = new URL(await gw.listen(0, '127.0.0.1'))
  const socket = connect(Number(url.port), '127.0.0.1')
  t.after(() => socket.destroy())
  await once(socket, 'connect')
  const answers = responses(socket, 2)
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await first // the first request is in flight: its socket is busy, so the close leaves it open

  const closing = gw.close()
  await refused(Number(url.port))
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\nx-request-id: after-close-1\r\n\r\n')
  release()
  const [ok, refusedAnswer] = await answers
  await closing

  assert.match(ok ?? '', /^HTTP\/1\.1 200 /)
  assert.ok(refusedAnswer !== undefined, 'the second request got no answer')
  assert.match(refusedAnswer, /^HTTP\/1\.1 503 /)
  assert.match(refusedAnswer, /\r\nconnection: close\r\n/i)
  assert.match(refusedAnswer, /\r\nx-request-id: after-close-1\r\n/i)
  const body = JSON.parse(refusedAnswer.slice(refusedAnswer.indexOf('\r\n\r\n') + 4)) as { error: { code: string, requestId: string } }
  assert.equal(body.error.code, 'GW_ERR_SHUTTING_DOWN')
  assert.equal(body.error.requestId, 'after-close-1')
  assert.equal(b.requests.length, 1) // the refused request never reached the service
})
