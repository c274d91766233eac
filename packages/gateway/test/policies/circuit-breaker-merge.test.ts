/**
 * On a route that merges several services, an open breaker's refusal reaches
 * the client as it is — 503 GW_ERR_CIRCUIT_OPEN with Retry-After — rather than
 * as a generic GW_ERR_SERVICE_FAILED without one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startBackend, json, unusedPort } from '../helpers/backend.js'
import { startGateway } from '../helpers/gateway.js'
import type { GatewayConfig } from '../../src/config/types.js'

test('an open breaker on one of several merged services answers 503 with Retry-After', async (t) => {
  const ok = await startBackend((_req, res) => json(res, 200, { a: 1 }))
  t.after(() => ok.close())
  const down = await unusedPort()
  const gw = await startGateway({
    http: {
      routes: {
        '/m': {
          GET: {
            services: {
              a: { type: 'http', url: `${ok.url}/a` },
              b: { type: 'http', url: `http://127.0.0.1:${down}/b`, mergeField: 'b', circuitBreaker: { consecutiveFailures: 1, openMs: 60_000 } }
            }
          }
        }
      }
    }
  } as unknown as GatewayConfig, t)
  const first = await fetch(`${gw.url}/m`)
  assert.equal(first.status, 502)
  await first.arrayBuffer()
  const refused = await fetch(`${gw.url}/m`)
  assert.equal(refused.status, 503)
  assert.equal((await refused.json() as { error: { code: string } }).error.code, 'GW_ERR_CIRCUIT_OPEN')
  assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/)
  assert.equal(refused.headers.get('x-switchyard-failed-service'), 'b')
})
