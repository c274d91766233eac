/**
 * A gateway from a config object on port 0 with a silent logger, closed by
 * the test (or by `t.after` when a test context is given).
 */
import { pino } from 'pino'
import { createGateway, type Gateway } from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/config/types.js'

export interface TestGateway {
  url: string
  gw: Gateway
  close: () => Promise<void>
}

interface AfterHost { after: (fn: () => Promise<void> | void) => void }

export async function startGateway (config: GatewayConfig, t?: AfterHost): Promise<TestGateway> {
  const gw = createGateway(config, { logger: pino({ level: 'silent' }) })
  const url = await gw.listen(0, '127.0.0.1')
  const close = async (): Promise<void> => { await gw.close() }
  t?.after(close)
  return { url, gw, close }
}

/** One route with one method: `{ http: { routes: { [path]: { [method]: route } } } }`. */
export function oneRoute (path: string, method: string, route: Record<string, unknown>): GatewayConfig {
  return { http: { routes: { [path]: { [method]: route } } } } as unknown as GatewayConfig
}
