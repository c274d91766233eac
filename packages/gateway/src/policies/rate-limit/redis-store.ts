/**
 * The Redis store: rateLimit-n.lua decides on Redis's clock, so a limit is
 * exact across any number of gateway instances (PRODUCT §4.2). Each request's
 * decision covers every limit of its route and is atomic; the decisions of
 * the requests that arrive in one event-loop turn go to Redis together, in
 * one EVALSHA, and the script makes them one after the other, in arrival
 * order (a later one sees what an earlier one charged). With 50 clients in
 * the benchmark that is several decisions per command: one command to build,
 * write and parse, one write and one read, instead of one each per request
 * (docs/performance.md).
 *
 * The batch is sent from `setImmediate`: after every I/O callback of the
 * current loop turn (where the requests were read), before the next wait for
 * I/O. A microtask or `process.nextTick` would send after each request, since
 * both run after every callback.
 *
 * Rejects at once when the command connection is not ready (it has no
 * offline queue) and after `timeoutMs` when Redis is slow, so the policy can
 * apply `onRedisDown`. One decision's failing command (a key holding another
 * type) rejects that decision only.
 *
 * The command is built here (ioredis `Command` + `sendCommand`): the
 * `defineCommand` wrapper copies the arguments and chains a promise per call,
 * and ioredis's per-command timer serves as the timeout. It names each key
 * once and each set of limits once: the requests of one client on one route
 * pass the same `checks` array (the policy makes it once per client address),
 * so a burst of them costs one number each in the command, not five values.
 * Sliding-window members are made in the script, from a prefix unique to the
 * command.
 */
import { createHash, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Command, type Redis } from 'ioredis'
import type { Decision, LimitCheck, LimitResult, LimitStore } from './store.js'

const SCRIPT = readFileSync(new URL('../../redis/scripts/rateLimit-n.lua', import.meta.url), 'utf8')
const SHA = createHash('sha1').update(SCRIPT).digest('hex')

/** At most this many decisions in one command; more in one turn make several commands. */
export const MAX_BATCH = 128

/**
 * One request waiting for its decision (`consumeWith`): its checks, and where
 * the decision goes. `decided` and `failed` are called once, from the batch's
 * reply, and must not throw.
 */
export interface Waiting {
  readonly checks: readonly LimitCheck[]
  decided: (d: Decision) => void
  failed: (err: unknown) => void
}

/** A decision waited for as a promise (`consume`). */
class Pending implements Waiting {
  readonly checks: readonly LimitCheck[]
  resolve!: (d: Decision) => void
  reject!: (err: unknown) => void
  readonly promise: Promise<Decision>

  constructor (checks: readonly LimitCheck[]) {
    this.checks = checks
    this.promise = new Promise<Decision>((resolve, reject) => { this.resolve = resolve; this.reject = reject })
  }

  decided (d: Decision): void { this.resolve(d) }
  failed (err: unknown): void { this.reject(err) }
}

export interface RedisStoreOptions {
  /** How long a decision waits for Redis before it rejects, in milliseconds. */
  timeoutMs: number
  /**
   * Starts every sliding-window member, which must be unique across all
   * gateways sharing the Redis. @default a random UUID
   */
  memberPrefix?: string
}

export class RedisStore implements LimitStore {
  readonly #redis: Redis
  readonly #timeoutMs: number
  readonly #memberPrefix: string
  #commands = 0
  #queue: Waiting[] = []
  #scheduled = false
  readonly #flush = (): void => {
    this.#scheduled = false
    const queue = this.#queue
    this.#queue = []
    if (queue.length <= MAX_BATCH) { this.#decide(queue); return }
    for (let i = 0; i < queue.length; i += MAX_BATCH) this.#decide(queue.slice(i, i + MAX_BATCH))
  }

  constructor (redis: Redis, options: RedisStoreOptions) {
    this.#redis = redis
    this.#timeoutMs = options.timeoutMs
    this.#memberPrefix = options.memberPrefix ?? randomUUID()
  }

  /** Whether the command connection can take a command now. */
  get ready (): boolean { return this.#redis.status === 'ready' }

  consume (checks: readonly LimitCheck[]): Promise<Decision> {
    const p = new Pending(checks)
    this.consumeWith(p)
    return p.promise
  }

  /**
   * `consume` without a promise: `w.decided` or `w.failed` is called with the
   * batch's reply (the rate limit's callback form, one object per request).
   */
  consumeWith (w: Waiting): void {
    this.#queue.push(w)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#flush)
    }
  }

  /** Sends one batch and settles each of its decisions. */
  #decide (batch: Waiting[]): void {
    // EVALSHA sha numkeys key… prefix count decision…, as rateLimit-n.lua describes.
    const keys = new Map<string, number>()
    const sets = new Map<readonly LimitCheck[], number>()
    const limits: Array<string | number> = [`${this.#memberPrefix}:${(this.#commands++).toString(36)}`, batch.length]
    for (const p of batch) {
      const set = sets.get(p.checks)
      if (set !== undefined) { limits.push(-set); continue }
      sets.set(p.checks, sets.size + 1)
      limits.push(p.checks.length)
      for (const c of p.checks) {
        let k = keys.get(c.key)
        if (k === undefined) { k = keys.size + 1; keys.set(c.key, k) }
        limits.push(k, c.algorithm, c.limit, c.windowMs)
      }
    }
    const args: Array<string | number> = [SHA, keys.size]
    for (const k of keys.keys()) args.push(k)
    for (const v of limits) args.push(v)
    this.#send('evalsha', args).catch(async (err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      // Redis restarted or flushed its scripts: EVAL loads the script again.
      args[0] = SCRIPT
      return await this.#send('eval', args)
    }).then((reply) => {
      settleAll(batch, reply)
    }, (err: unknown) => {
      for (const p of batch) p.failed(err)
    })
  }

  /**
   * One command, written at once (not auto-pipelined: the batch is already
   * one command) and rejected with "Command timed out" after `timeoutMs` by
   * ioredis's own per-command timer.
   */
  async #send (name: 'evalsha' | 'eval', args: Array<string | number>): Promise<string> {
    const cmd = new Command(name, args, { replyEncoding: 'utf8' })
    cmd.setTimeout(this.#timeoutMs)
    return await (this.#redis.sendCommand(cmd) as Promise<string>)
  }
}

/**
 * Settles a batch from the script's reply: one line per decision, either
 * integers one space apart (allowed, then remaining, reset and retry per
 * limit) or `!` and the error of that decision's command. Read in place: one
 * bulk string instead of an array per decision, which ioredis's decoder reads
 * element by element (~1.5 µs per request in a profile).
 */
function settleAll (batch: readonly Waiting[], reply: unknown): void {
  const text = typeof reply === 'string' ? reply : ''
  let pos = 0
  for (const p of batch) {
    let end = text.indexOf('\n', pos)
    if (end === -1) end = text.length
    if (pos >= end) {
      p.failed(new Error('rate-limit script: no answer for this decision'))
    } else if (text.charCodeAt(pos) === 33) { // '!'
      p.failed(new Error(`rate-limit script: ${text.slice(pos + 1, end)}`))
    } else {
      const numbers = readIntegers(text, pos, end)
      if (numbers.length !== 1 + 3 * p.checks.length) {
        p.failed(new Error(`rate-limit script: unexpected answer "${text.slice(pos, end)}"`))
      } else {
        const results: LimitResult[] = []
        for (let i = 0; i < p.checks.length; i++) {
          results.push({ remaining: numbers[1 + 3 * i]!, resetMs: numbers[2 + 3 * i]!, retryAfterMs: numbers[3 + 3 * i]! })
        }
        p.decided({ allowed: numbers[0] === 1, results })
      }
    }
    pos = end + 1
  }
}

/** The non-negative integers of `text` between `from` and `to`, one space apart. */
function readIntegers (text: string, from: number, to: number): number[] {
  const out: number[] = []
  let n = 0
  let digits = 0
  for (let i = from; i <= to; i++) {
    const c = i < to ? text.charCodeAt(i) : 32
    if (c >= 48 && c <= 57) { n = n * 10 + (c - 48); digits++ } else if (c === 32 && digits > 0) { out.push(n); n = 0; digits = 0 } else return []
  }
  return out
}
