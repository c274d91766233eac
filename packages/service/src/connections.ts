/**
 * The SDK's own Redis connections (STYLE §3): one for commands, one for
 * SUBSCRIBE, one per blocking XREADGROUP. Commands wait across reconnects
 * (`maxRetriesPerRequest: null`) so a Redis restart delays work instead of
 * losing it; ioredis re-subscribes and re-sends unanswered commands by itself.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { errField } from './logger.js'
import type { Logger, RedisConnectionOptions } from './types.js'

export type ConnectionRole = 'command' | 'subscriber' | 'reader'

function retryStrategy (times: number): number {
  return Math.min(50 * times, 1000)
}

/** Opens one connection for `role`; errors are logged (at most once every 5 s), never thrown. */
export function connect (option: RedisConnectionOptions, role: ConnectionRole, service: string, log: Logger): Redis {
  let url: string | undefined
  let base: RedisOptions
  if (typeof option === 'string') {
    url = option
    base = {}
  } else {
    const { url: u, ...rest } = option as { url?: unknown } & RedisOptions
    url = typeof u === 'string' ? u : undefined
    base = rest
  }
  const options: RedisOptions = {
    retryStrategy,
    connectionName: `switchyard-service:${service}:${role}`,
    // Replies, acks and done records of concurrent handlers share round trips; on a
    // reader, a batch's completions share one write with the next XREADGROUP.
    enableAutoPipelining: role !== 'subscriber',
    ...base,
    // Not overridable: the consumers rely on them.
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    replyMapping: 'legacy',
    lazyConnect: false
  }
  const redis = url === undefined ? new Redis(options) : new Redis(url, options)
  let lastLog = 0
  redis.on('error', (err: unknown) => {
    // While Redis is down, reconnect attempts fail many times a second.
    const now = Date.now()
    if (now - lastLog < 5000) return
    lastLog = now
    log.warn({ connection: role, err: errField(err) }, 'redis connection error; reconnecting')
  })
  return redis
}

/** QUIT politely when connected, else (or when QUIT hangs) drop the socket. */
export async function closeConnection (redis: Redis, timeoutMs = 1000): Promise<void> {
  if (redis.status === 'end') return
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      redis.quit().catch(() => {}),
      new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
    ])
    clearTimeout(timer)
  }
  redis.disconnect()
}
