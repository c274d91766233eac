/**
 * `npm start`: the storefront example — its services on free ports, then the
 * gateway on :8080 (PORT overrides). Ctrl-C stops everything.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { catalogService } from './storefront/services/catalog.js'
import { inventoryService } from './storefront/services/inventory.js'
import { reviewsService } from './storefront/services/reviews.js'

async function listen (server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const servers = [catalogService(), inventoryService(), reviewsService()]
const [catalog, inventory, reviews] = await Promise.all(servers.map(listen))
process.env.CATALOG_URL = catalog
process.env.INVENTORY_URL = inventory
process.env.REVIEWS_URL = reviews

const { createGateway, loadConfigFile } = await import('@switchyard/gateway')
const config = await loadConfigFile(new URL('./storefront/gateway.config.ts', import.meta.url).pathname)
const gateway = createGateway({ ...config, logging: { level: process.env.LOG_LEVEL as 'info' | undefined ?? 'warn' } })
const port = Number(process.env.PORT ?? config.server?.port ?? 8080)
const address = await gateway.listen(port, '127.0.0.1')
process.stdout.write(`storefront gateway listening on ${address}
  services: catalog ${catalog}, inventory ${inventory}, reviews ${reviews}
  try:  curl ${address}/products/p1
        curl -X POST -H 'content-type: application/json' -d '{"delta":5}' ${address}/inventory/p2
`)

const stop = (): void => {
  gateway.close().finally(() => { for (const s of servers) s.close(); process.exit(0) })
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
