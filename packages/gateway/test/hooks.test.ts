/**
 * PRODUCT §3.8 and §9.1: a hook that throws (or rejects) gives 500
 * GW_ERR_HOOK_FAILED, and nothing else is affected — the next request is fine.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startBackend, json, type Backend } from './helpers/backend.js'
import { startGateway, type TestGateway } from './helpers/gateway.js'
import type { HttpRequest } from '@switchyard/protocol'
import type { GatewayConfig } from '../src/config/types.js'

/** A hook body that fails only when the client asked for it, sync or async. */
function boom (req: HttpRequest | undefined): void {
  const mode = req?.headers?.['x-boom']
  if (mode === 'sync') throw new Error('hook exploded')
}
async function boomAsync (req: HttpRequest | undefined): Promise<void> {
  await Promise.resolve()
  if (req?.headers?.['x-boom'] === 'async') throw new Error('hook rejected')
}

const HOOKS = {
  'route onRequest': (svc: Record<string, unknown>) => ({ onRequest: async (r: HttpRequest) => { boom(r); await boomAsync(r) }, services: { a: svc } }),
  'route onResponse': (svc: Record<string, unknown>) => ({ onResponse: async (_res: unknown, r: HttpRequest) => { boom(r); await boomAsync(r) }, services: { a: svc } }),
  'service onRequest': (svc: Record<string, unknown>) => ({ services: { a: { ...svc, onRequest: async (r: HttpRequest) => { boom(r); await boomAsync(r) } } } }),
  'service onResponse': (svc: Record<string, unknown>) => ({ services: { a: { ...svc, onResponse: async (_res: unknown, r: HttpRequest) => { boom(r); await boomAsync(r) } } } }),
  'service onRequest beside another service': (svc: Record<string, unknown>, other: Record<string, unknown>) => ({ services: { a: { ...svc, onRequest: async (r: HttpRequest) => { boom(r); await boomAsync(r) } }, b: other } }),
  mergeResponses: (svc: Record<string, unknown>, other: Record<string, unknown>) => ({ mergeResponses: async (_l: unknown, r: HttpRequest) => { boom(r); await boomAsync(r) }, services: { a: svc, b: other } })
} as const

describe('a throwing hook is a 500 GW_ERR_HOOK_FAILED', () => {
  let b: Backend
  let gw: TestGateway
  const paths = Object.keys(HOOKS).map((_, i) => `/h${i}`)
  before(async () => {
    b = await startBackend((req, res) => json(res, 200, { path: req.url }))
    const routes: Record<string, unknown> = {}
    Object.values(HOOKS).forEach((make, i) => {
      routes[paths[i]!] = { POST: make({ type: 'http', url: `${b.url}/a${i}` }, { type: 'http', url: `${b.url}/b${i}`, mergeField: 'b' }) }
    })
    gw = await startGateway({ http: { routes } } as unknown as GatewayConfig)
  })
  after(async () => {
    await gw.close()
    await b.close()
  })

  Object.keys(HOOKS).forEach((name, i) => {
    test(name, async () => {
      for (const mode of ['sync', 'async']) {
        const res = await fetch(gw.url + paths[i]!, { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json', 'x-boom': mode } })
        const text = await res.text()
        assert.equal(res.status, 500, `${mode}: ${text}`)
        const body = JSON.parse(text) as { error: { code: string, message: string } }
        assert.equal(body.error.code, 'GW_ERR_HOOK_FAILED')
        assert.ok(!text.includes('exploded') && !text.includes('rejected'), 'the hook\'s own message is not shown to the client')
      }
      // The next request on the same route is fine.
      const ok = await fetch(gw.url + paths[i]!, { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } })
      assert.equal(ok.status, 200)
      await ok.arrayBuffer()
    })
  })

  test('an onError hook that throws does not change the answer', async (t) => {
    const failing = await startBackend((_req, res) => json(res, 503, { down: true }))
    t.after(() => failing.close())
    const { url } = await startGateway({
      http: {
        routes: {
          '/e': { GET: { onError: () => { throw new Error('onError exploded') }, services: { a: { type: 'http', url: failing.url, onError: async () => { throw new Error('rejected') } } } } }
        }
      }
    } as unknown as GatewayConfig, t)
    const res = await fetch(`${url}/e`)
    assert.equal(res.status, 503)
    assert.deepEqual(await res.json(), { down: true })
  })
})
