/**
 * The storefront gateway (PRODUCT §7). Service addresses come from the
 * environment so `examples/start.ts` can start the services on free ports.
 */
import { defineConfig, type GatewayConfig } from '@switchyard/gateway'

const catalog = process.env.CATALOG_URL ?? 'http://127.0.0.1:3101'
const inventory = process.env.INVENTORY_URL ?? 'http://127.0.0.1:3102'
const reviews = process.env.REVIEWS_URL ?? 'http://127.0.0.1:3103'
// Set by examples/start.ts when a Redis is available; without one the Redis routes are left out.
const redisUrl = process.env.STOREFRONT_REDIS_URL
const prefix = 'storefront'

const redisRoutes: NonNullable<GatewayConfig['http']>['routes'] = redisUrl === undefined
  ? {}
  : {
      // A Prism-style pub/sub service, merged with an HTTP one.
      '/account/:user': {
        GET: {
          services: {
            messaging: { type: 'redis', requestChannel: `${prefix}:messaging`, mergeField: 'messages', timeout: 2000 },
            inventory: { type: 'http', url: `${inventory}/inventory/p1`, mergeField: 'featured' }
          }
        }
      },
      // Orders go on a stream read by the checkout replicas.
      '/checkout': { POST: { services: { checkout: { type: 'redis-stream', timeout: 5000 } } } }
    }

export default defineConfig({
  server: { port: 8080 },
  ...(redisUrl === undefined ? {} : { redis: { url: redisUrl, prefix } }),
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
      },
      ...redisRoutes
    }
  }
})
