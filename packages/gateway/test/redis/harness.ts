/** Shared set-up for the Redis transport tests: a private redis-server, gateways, HTTP backends. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { createGateway, type Gateway } from '../../src/index.js'
import type { GatewayConfig } from '../../src/config/types.js'

export const silent = pino({ level: 'silent' })

export async function startGateway (config: GatewayConfig): Promise<{ url: string, gw: Gateway }> {
  const gw = createGateway(config, { logger: silent })
  const url = await gw.listen(0, '127.0.0.1')
  return { url, gw }
}

export async function httpBackend (handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<{ url: string, close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handler(req, Buffer.concat(chunks), res))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) }
  }
}

export function json (res: ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) })
  res.end(s)
}

/**
 * Polls `probe` until it returns a value (bounded: 10 s). For recoveries that
 * have no event to await, such as a reconnect inside another process.
 */
export async function eventually<T> (probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
