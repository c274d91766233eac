/**
 * The storefront gateway (PRODUCT §7). Service addresses come from the
 * environment so `examples/start.ts` can start the services on free ports.
 */
import { defineConfig } from '@switchyard/gateway'

const catalog = process.env.CATALOG_URL ?? 'http://127.0.0.1:3101'
const inventory = process.env.INVENTORY_URL ?? 'http://127.0.0.1:3102'
const reviews = process.env.REVIEWS_URL ?? 'http://127.0.0.1:3103'

export default defineConfig({
  server: { port: 8080 },
  http: {
    routes: {
      '/products': {
        GET: { services: { catalog: { type: 'http', url: `${catalog}/products` } } }
      },
      '/products/:id': {
        GET: {
          services: {
            catalog: { type: 'http', url: `${catalog}/products/:id` },
            inventory: { type: 'http', url: `${inventory}/inventory/:id`, mergeField: 'stock' },
            reviews: { type: 'http', url: `${reviews}/reviews/:id`, mergeField: 'reviews', optional: true, timeout: 500 }
          }
        }
      },
      '/inventory/:sku': {
        GET: { services: { inventory: { type: 'http', url: `${inventory}/inventory/:sku` } } },
        POST: { services: { inventory: { type: 'http', url: `${inventory}/inventory/:sku` } } }
      }
    }
  }
})
