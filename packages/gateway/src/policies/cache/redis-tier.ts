/**
 * The shared tier: entries in Redis, shared by every gateway instance, with
 * the fill lease (single-flight across instances), the fill notification, tag
 * indexes, and invalidation broadcast to every instance's in-process tier.
 *
 * Commands go over the gateway's shared command connection (no offline
 * queue: while Redis is down they fail at once and the cache treats the
 * shared tier as absent). Notifications arrive on a subscriber connection of
 * the cache's own (STYLE §3: separate connections for commands and SUBSCRIBE).
 */
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { RedisConnections, RedisSettings } from '../../redis/connections.js'
import { now, type Entry, type InvalidateSelector } from './entry.js'
import type { CacheKeys } from './key.js'

function script (file: string): string {
  return readFileSync(new URL(`../../redis/scripts/${file}`, import.meta.url), 'utf8')
}

const LOOKUP_LUA = script('cacheLookup-2.lua')
const STORE_LUA = script('cacheStore-n.lua')
const RELEASE_LUA = script('cacheRelease-1.lua')
const INVALIDATE_TAG_LUA = script('cacheInvalidateTag-1.lua')

type Arg = string | Buffer | number

/** The cache's scripts, as ioredis `defineCommand` adds them. */
interface CacheCommands {
  switchyardCacheLookupBuffer: (entry: string, lock: string, token: string, leaseMs: string) => Promise<unknown[]>
  switchyardCacheStore: (numKeys: number, ...keysAndArgs: Arg[]) => Promise<number>
  switchyardCacheRelease: (lock: string, token: string, channel: string, message: string) => Promise<number>
  switchyardCacheInvalidateTag: (tag: string) => Promise<number>
}

type CommandConnection = Redis & CacheCommands

/** 1: this caller took the fill lease; 0: another holds it; -1: not tried. */
export type LeaseState = 1 | 0 | -1

export type LookupResult =
  | { state: 'missing', lease: LeaseState }
  | { state: 'fresh' | 'stale', lease: LeaseState, entry: Entry }

export type FillOutcome = 'stored' | 'released' | 'timeout'

export interface RedisTierEvents {
  /** An invalidation from any instance (this one included): apply it to the in-process tiers. */
  onInvalidate: (sel: InvalidateSelector) => void
  /** The subscription is (again) up: invalidations sent while it was not were missed. */
  onSubscribed: () => void
}

/**
 * How long a cache read or write may take before the request carries on
 * without the shared tier, in ms: a stalled Redis must not stall every miss.
 */
export const REDIS_STEP_MS = 1000

/** Rejects when `p` takes longer than `ms`; `p` is left to settle on its own. */
async function bounded<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
    p.catch(() => {})
  }
}

function retryStrategy (times: number): number {
  return Math.min(50 * times, 1000)
}

export class RedisTier {
  readonly #cmd: CommandConnection
  readonly #sub: Redis
  readonly #keys: CacheKeys
  readonly #log: Logger
  readonly #events: RedisTierEvents
  readonly #fillWaiters = new Map<string, Set<(stored: boolean) => void>>()
  readonly #acks = new Map<string, { count: number, want: number, done: () => void }>()
  readonly #changed = new EventEmitter()
  #subscribed = false
  #lastWarn = 0
  #closing: Promise<void> | undefined

  constructor (conns: RedisConnections, settings: RedisSettings, keys: CacheKeys, log: Logger, events: RedisTierEvents) {
    this.#keys = keys
    this.#log = log
    this.#events = events
    const cmd = conns.command as CommandConnection
    // Defined once per connection (a gateway's routes share one runtime, so one connection).
    if (typeof cmd.switchyardCacheLookupBuffer !== 'function') {
      cmd.defineCommand('switchyardCacheLookup', { numberOfKeys: 2, lua: LOOKUP_LUA })
      cmd.defineCommand('switchyardCacheStore', { lua: STORE_LUA })
      cmd.defineCommand('switchyardCacheRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
      cmd.defineCommand('switchyardCacheInvalidateTag', { numberOfKeys: 1, lua: INVALIDATE_TAG_LUA })
    }
    this.#cmd = cmd
    this.#changed.setMaxListeners(0)
    cmd.on('ready', () => this.#changed.emit('change'))
    const options: RedisOptions = { ...settings.options, retryStrategy, connectionName: 'switchyard-cache', enableOfflineQueue: true, maxRetriesPerRequest: null }
    this.#sub = settings.url === undefined ? new Redis(options) : new Redis(settings.url, options)
    this.#sub.on('error', (err: Error) => this.#warn(err, 'cache subscriber: redis connection error; reconnecting'))
    this.#sub.on('ready', () => { this.#subscribe() })
    this.#sub.on('close', () => { this.#subscribed = false })
    this.#sub.on('message', (channel: string, message: string) => { this.#onMessage(channel, message) })
  }

  /** Whether commands can be sent now. */
  get available (): boolean {
    return this.#cmd.status === 'ready'
  }

  /** Resolves true once commands can be sent and notifications arrive, false after `ms`. */
  async ready (ms: number): Promise<boolean> {
    const ok = (): boolean => this.available && this.#subscribed
    if (ok()) return true
    return await new Promise<boolean>(resolve => {
      const check = (): void => { if (ok()) done(true) }
      const timer = setTimeout(() => done(false), ms)
      const done = (v: boolean): void => {
        clearTimeout(timer)
        this.#changed.off('change', check)
        resolve(v)
      }
      this.#changed.on('change', check)
    })
  }

  #subscribe (): void {
    const k = this.#keys
    this.#sub.subscribe(k.fillChannel, k.invalidateChannel, k.ackChannel).then(() => {
      this.#events.onSubscribed()
      this.#subscribed = true
      this.#changed.emit('change')
    }, (err: unknown) => this.#warn(err, 'cache subscriber: subscribe failed; retried on reconnect'))
  }

  #onMessage (channel: string, message: string): void {
    const k = this.#keys
    try {
      if (channel === k.fillChannel) {
        const m = JSON.parse(message) as { id?: unknown, stored?: unknown }
        if (typeof m.id !== 'string') return
        const waiters = this.#fillWaiters.get(m.id)
        if (waiters !== undefined) for (const w of [...waiters]) w(m.stored === true)
      } else if (channel === k.invalidateChannel) {
        const m = JSON.parse(message) as Record<string, unknown>
        this.#events.onInvalidate(cleanSelector(m))
        if (typeof m.id === 'string') this.#cmd.publish(k.ackChannel, m.id).catch((err: unknown) => this.#warn(err, 'cache: could not acknowledge an invalidation'))
      } else if (channel === k.ackChannel) {
        const a = this.#acks.get(message)
        if (a !== undefined && ++a.count >= a.want) a.done()
      }
    } catch (err) {
      this.#log.warn({ err, channel }, 'cache: malformed message ignored')
    }
  }

  #warn (err: unknown, msg: string): void {
    // Reconnects fail many times a second while Redis is down: log once every 5 s.
    const t = Date.now()
    if (t - this.#lastWarn < 5000) return
    this.#lastWarn = t
    this.#log.warn({ err: err instanceof Error ? err.message : err }, msg)
  }

  /** Logs a failed command (rate-limited); the caller carries on without the shared tier. */
  failed (err: unknown, what: string): void {
    this.#warn(err, `cache: ${what} failed; redis unavailable, using the in-process tier only`)
  }

  /**
   * Reads an entry; when it is missing or stale and `token` is given, tries to
   * take its fill lease in the same step (cacheLookup-2.lua).
   */
  async lookup (id: string, token: string | undefined, leaseMs: number): Promise<LookupResult> {
    const r = await bounded(this.#cmd.switchyardCacheLookupBuffer(this.#keys.entry(id), this.#keys.lock(id), token ?? '', String(leaseMs)), REDIS_STEP_MS, 'cache lookup')
    const state = r[0] as number
    const age = r[1] as number
    const lease = r[2] as LeaseState
    if (state === 0) return { state: 'missing', lease }
    const text = (i: number): string => (r[i] as Buffer).toString('utf8')
    let entry: Entry
    try {
      entry = {
        id,
        status: Number(text(3)),
        headers: JSON.parse(text(4)) as Record<string, string | string[]>,
        // A copy: the reply's buffer may be a view of a larger one the LRU would then keep alive.
        body: Buffer.from(r[5] as Buffer),
        storedAt: now() - age,
        ttlMs: Number(text(6)),
        swrMs: Number(text(7)),
        sieMs: Number(text(8)),
        tags: JSON.parse(text(9)) as string[]
      }
    } catch (err) {
      this.#log.warn({ err, id }, 'cache: unreadable entry in redis treated as missing')
      return { state: 'missing', lease }
    }
    return { state: state === 1 ? 'fresh' : 'stale', lease, entry }
  }

  /** Stores an entry with its tags, releases `token`'s lease, and notifies waiters (cacheStore-n.lua). */
  async store (e: Entry, token: string | undefined): Promise<void> {
    const k = this.#keys
    const keys = [k.entry(e.id), k.lock(e.id), ...e.tags.map(t => k.tag(t))]
    await bounded(this.#cmd.switchyardCacheStore(keys.length, ...keys, token ?? '', String(e.status), JSON.stringify(e.headers), e.body,
      String(e.ttlMs), String(e.swrMs), String(e.sieMs), JSON.stringify(e.tags), k.fillChannel, JSON.stringify({ id: e.id, stored: true })), REDIS_STEP_MS, 'cache store')
  }

  /** Gives back a lease without storing; waiters on other instances then go upstream themselves. */
  async release (id: string, token: string): Promise<void> {
    await this.#cmd.switchyardCacheRelease(this.#keys.lock(id), token, this.#keys.fillChannel, JSON.stringify({ id, stored: false }))
  }

  /** Waits for a notification that `id` was stored or its lease released, at most `ms`. */
  async waitFill (id: string, ms: number): Promise<FillOutcome> {
    return await new Promise<FillOutcome>(resolve => {
      let set = this.#fillWaiters.get(id)
      if (set === undefined) { set = new Set(); this.#fillWaiters.set(id, set) }
      const waiters = set
      const finish = (r: FillOutcome): void => {
        clearTimeout(timer)
        waiters.delete(w)
        if (waiters.size === 0) this.#fillWaiters.delete(id)
        resolve(r)
      }
      const w = (stored: boolean): void => finish(stored ? 'stored' : 'released')
      const timer = setTimeout(() => finish('timeout'), ms)
      waiters.add(w)
    })
  }

  /** Deletes the matching entries from Redis; returns how many. */
  async deleteMatching (sel: InvalidateSelector): Promise<number> {
    const k = this.#keys
    let n = 0
    for (const tag of sel.tags ?? []) n += await this.#cmd.switchyardCacheInvalidateTag(k.tag(tag))
    for (const key of sel.keys ?? []) {
      if (key.includes('#')) n += await this.#cmd.unlink(k.entry(key))
      else n += await this.#scanDelete(k.entryPattern(`${key}#`))
    }
    if (sel.prefix !== undefined) n += await this.#scanDelete(k.entryPattern(sel.prefix))
    return n
  }

  async #scanDelete (pattern: string): Promise<number> {
    let cursor = '0'
    let n = 0
    do {
      const [next, found] = await this.#cmd.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      if (found.length > 0) n += await this.#cmd.unlink(...found)
    } while (cursor !== '0')
    return n
  }

  /**
   * Tells every instance (this one too) to apply `sel` to its in-process tier,
   * and waits until each that received it has acknowledged, at most `ackMs`.
   * Returns how many instances received and acknowledged it.
   */
  async broadcast (sel: InvalidateSelector, ackMs: number): Promise<{ receivers: number, acked: number }> {
    const id = randomUUID()
    let done!: () => void
    const acked = new Promise<void>(resolve => { done = resolve })
    const state = { count: 0, want: Number.POSITIVE_INFINITY, done }
    this.#acks.set(id, state)
    let timer: NodeJS.Timeout | undefined
    try {
      const receivers = await this.#cmd.publish(this.#keys.invalidateChannel, JSON.stringify({ id, ...sel }))
      state.want = receivers
      if (state.count < receivers) {
        await Promise.race([acked, new Promise<void>(resolve => { timer = setTimeout(resolve, ackMs) })])
      }
      return { receivers, acked: Math.min(state.count, receivers) }
    } finally {
      clearTimeout(timer)
      this.#acks.delete(id)
    }
  }

  async close (): Promise<void> {
    this.#closing ??= (async () => {
      for (const set of this.#fillWaiters.values()) for (const w of [...set]) w(false)
      await this.#sub.quit().catch(() => {})
      this.#sub.disconnect()
    })()
    return await this.#closing
  }
}

/** Keeps only well-formed selector fields from a message. */
export function cleanSelector (m: Record<string, unknown>): InvalidateSelector {
  const sel: InvalidateSelector = {}
  const strings = (v: unknown): string[] | undefined => Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : undefined
  const tags = strings(m.tags)
  const keys = strings(m.keys)
  if (tags !== undefined && tags.length > 0) sel.tags = tags
  if (keys !== undefined && keys.length > 0) sel.keys = keys
  if (typeof m.prefix === 'string') sel.prefix = m.prefix
  return sel
}
