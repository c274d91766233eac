/** Test helpers shared by every package's tests. */
export { startRedis, freePort } from './redis-server.js'
export type { RedisServer, StartRedisOptions } from './redis-server.js'
