import type { GatewayConfig } from './config/types.js'

/**
 * Types a config written in TypeScript; returns it unchanged.
 * @example
 * export default defineConfig({ http: { routes: { '/users/:id': { GET: { services: { users: { type: 'http', url: 'http://users/users/:id' } } } } } } })
 */
export function defineConfig<const T extends GatewayConfig> (config: T): T {
  return config
}
