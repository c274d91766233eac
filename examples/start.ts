/**
 * `npm start`: the storefront example (PRODUCT §6.9, §7). Its HTTP services
 * start on free ports; for its Redis services it uses REDIS_URL, else a Redis
 * on 127.0.0.1:6379, else a private `redis-server` child if the binary exists,
 * else it runs the HTTP parts alone and says what is off. Gateway on :8080 (PORT).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import type { Server } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { catalogService } from './storefront/services/catalog.js'
import { inventoryService } from './storefront/services/inventory.js'
import { reviewsService } from './storefront/services/reviews.js'

async function listen (server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function reachable (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

async function freePort (): Promise<number> {
  const srv = createNetServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as AddressInfo
  await new Promise(resolve => srv.close(resolve))
  return port
}

/** A private redis-server child, ready when it says so (no sleeps). */
async function privateRedis (): Promise<{ url: string, child: ChildProcess } | undefined> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const ok = await new Promise<boolean>(resolve => {
    child.once('error', () => resolve(false))
    child.once('exit', () => resolve(false))
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('Ready to accept connections')) resolve(true) })
  })
  if (!ok) return undefined
  child.stdout!.resume()
  return { url: `redis://127.0.0.1:${port}`, child }
}

const notes: string[] = []
let redisUrl = process.env.REDIS_URL
let redisChild: ChildProcess | undefined
if (redisUrl === undefined) {
  if (await reachable(6379)) redisUrl = 'redis://127.0.0.1:6379'
  else {
    const r = await privateRedis()
    if (r !== undefined) { redisUrl = r.url; redisChild = r.child; notes.push(`started a private redis-server at ${r.url}`) }
  }
}
if (redisUrl === undefined) notes.push('no Redis (no REDIS_URL, nothing on 6379, no redis-server binary): the Redis routes /account/:user and /checkout are OFF; HTTP routes run on in-memory state')

const servers = [catalogService(), inventoryService(), reviewsService()]
const [catalog, inventory, reviews] = await Promise.all(servers.map(listen))
process.env.CATALOG_URL = catalog
process.env.INVENTORY_URL = inventory
process.env.REVIEWS_URL = reviews
const stops: Array<() => unknown> = []
if (redisUrl !== undefined) {
  process.env.STOREFRONT_REDIS_URL = redisUrl
  const { messagingService } = await import('./storefront/services/messaging.js')
  const { checkoutService } = await import('./storefront/services/checkout.js')
  stops.push(await messagingService(redisUrl, 'storefront:messaging'))
  const checkout = await checkoutService(redisUrl, 'storefront')
  stops.push(async () => await checkout.close())
}

const { createGateway, loadConfigFile } = await import('@switchyard/gateway')
const config = await loadConfigFile(new URL('./storefront/gateway.config.ts', import.meta.url).pathname)
const gateway = createGateway({ ...config, logging: { level: process.env.LOG_LEVEL as 'info' | undefined ?? 'warn' } })
const port = Number(process.env.PORT ?? config.server?.port ?? 8080)
const address = await gateway.listen(port, '127.0.0.1')
process.stdout.write(`storefront gateway listening on ${address}
  services: catalog ${catalog}, inventory ${inventory}, reviews ${reviews}${redisUrl === undefined ? '' : `; messaging (pub/sub) and checkout (streams) on ${redisUrl}`}
${notes.map(n => `  note: ${n}\n`).join('')}  try:  curl ${address}/products/p1
        curl -X POST -H 'content-type: application/json' -d '{"delta":5}' ${address}/inventory/p2
${redisUrl === undefined
? ''
: `        curl ${address}/account/ada
        curl -X POST -H 'content-type: application/json' -d '{"items":[{"sku":"p1","qty":1}]}' ${address}/checkout
`}`)

const stop = (): void => {
  gateway.close().finally(async () => {
    for (const s of stops) await s()
    for (const s of servers) s.close()
    redisChild?.kill()
    process.exit(0)
  })
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
