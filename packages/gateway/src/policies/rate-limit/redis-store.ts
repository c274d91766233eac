/**
 * The Redis store: one EVALSHA of rateLimit-n.lua per request, covering every
 * limit of the route, on Redis's clock — exact across any number of gateway
 * instances (PRODUCT §4.2). Rejects at once when the command connection is not
 * ready (it has no offline queue) and after `timeoutMs` when Redis is slow, so
 * the policy can apply `onRedisDown`.
 */
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import type { Decision, LimitCheck, LimitResult, LimitStore } from './store.js'

const SCRIPT = readFileSync(new URL('../../redis/scripts/rateLimit-n.lua', import.meta.url), 'utf8')
const COMMAND = 'switchyardRateLimit'

type RateLimitCommand = (numKeys: number, ...args: Array<string | number>) => Promise<number[]>

/** Raised when Redis did not answer in time; the caller treats it like Redis being down. */
export class RedisSlowError extends Error {
  constructor (ms: number) { super(`redis did not answer within ${ms} ms`) }
}

export class RedisStore implements LimitStore {
  readonly #redis: Redis
  readonly #timeoutMs: number

  constructor (redis: Redis, timeoutMs: number) {
    this.#redis = redis
    this.#timeoutMs = timeoutMs
    if (typeof (redis as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
      // No numberOfKeys: the caller passes it first (the key count varies per route).
      redis.defineCommand(COMMAND, { lua: SCRIPT })
    }
  }

  /** Whether the command connection can take a command now. */
  get ready (): boolean { return this.#redis.status === 'ready' }

  async consume (checks: readonly LimitCheck[], member: string): Promise<Decision> {
    const args: Array<string | number> = checks.map(c => c.key)
    args.push(member)
    for (const c of checks) args.push(c.algorithm, c.limit, c.windowMs)
    const call = (this.#redis as unknown as Record<string, RateLimitCommand>)[COMMAND]!.call(this.#redis, checks.length, ...args)
    let timer: NodeJS.Timeout | undefined
    const slow = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new RedisSlowError(this.#timeoutMs)), this.#timeoutMs)
    })
    try {
      const reply = await Promise.race([call, slow])
      const results: LimitResult[] = []
      for (let i = 0; i < checks.length; i++) {
        results.push({ remaining: Number(reply[1 + 3 * i]), resetMs: Number(reply[2 + 3 * i]), retryAfterMs: Number(reply[3 + 3 * i]) })
      }
      return { allowed: Number(reply[0]) === 1, results }
    } finally {
      clearTimeout(timer)
      call.catch(() => {}) // a late rejection after the timeout is expected
    }
  }
}
