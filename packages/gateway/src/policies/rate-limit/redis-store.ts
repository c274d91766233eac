/**
 * The Redis store: one EVALSHA of rateLimit-n.lua per request, covering every
 * limit of the route, on Redis's clock — exact across any number of gateway
 * instances (PRODUCT §4.2). Rejects at once when the command connection is not
 * ready (it has no offline queue) and after `timeoutMs` when Redis is slow, so
 * the policy can apply `onRedisDown`.
 *
 * The command is built here (ioredis `Command` + `sendCommand`) rather than
 * through `defineCommand`: that wrapper copies the arguments and chains a
 * promise per call, and the timeout needed a timer and a `Promise.race` of our
 * own; about 7 µs a request together (docs/performance.md).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Command, type Redis } from 'ioredis'
import type { Decision, LimitCheck, LimitResult, LimitStore } from './store.js'

const SCRIPT = readFileSync(new URL('../../redis/scripts/rateLimit-n.lua', import.meta.url), 'utf8')
const SHA = createHash('sha1').update(SCRIPT).digest('hex')

export class RedisStore implements LimitStore {
  readonly #redis: Redis
  readonly #timeoutMs: number

  constructor (redis: Redis, timeoutMs: number) {
    this.#redis = redis
    this.#timeoutMs = timeoutMs
  }

  /** Whether the command connection can take a command now. */
  get ready (): boolean { return this.#redis.status === 'ready' }

  async consume (checks: readonly LimitCheck[], member: string): Promise<Decision> {
    const args: Array<string | number> = [SHA, checks.length]
    for (const c of checks) args.push(c.key)
    args.push(member)
    for (const c of checks) args.push(c.algorithm, c.limit, c.windowMs)
    let reply: unknown[]
    try {
      reply = await this.#send('evalsha', args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      // Redis restarted or flushed its scripts: EVAL loads the script again.
      args[0] = SCRIPT
      reply = await this.#send('eval', args)
    }
    const results: LimitResult[] = []
    for (let i = 0; i < checks.length; i++) {
      results.push({ remaining: Number(reply[1 + 3 * i]), resetMs: Number(reply[2 + 3 * i]), retryAfterMs: Number(reply[3 + 3 * i]) })
    }
    return { allowed: Number(reply[0]) === 1, results }
  }

  /**
   * One command, written at once (not auto-pipelined: the decision is the
   * request's critical path) and rejected with "Command timed out" after
   * `timeoutMs` by ioredis's own per-command timer.
   */
  async #send (name: 'evalsha' | 'eval', args: Array<string | number>): Promise<unknown[]> {
    const cmd = new Command(name, args, { replyEncoding: 'utf8' })
    cmd.setTimeout(this.#timeoutMs)
    return await (this.#redis.sendCommand(cmd) as Promise<unknown[]>)
  }
}
