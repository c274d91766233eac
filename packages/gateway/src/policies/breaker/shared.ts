/**
 * Shared breaker state through Redis (PRODUCT §4.4: "every instance opens
 * together"). Each instance keeps counting its own calls in its local
 * machine; Redis holds what must agree across instances: open (until when,
 * on Redis's clock), which instance holds the half-open probe, closed again.
 *
 * Nothing here is on the hot path: Redis is called when a breaker changes
 * state and for the one probe, and read on pub/sub messages and a slow poll
 * (every SHARED_SYNC_MS, the safety net for a message lost in a reconnect).
 * While Redis is unreachable every call fails fast (no offline queue) and
 * the local machines decide alone; they agree again once Redis is back.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { RedisConnections } from '../../redis/connections.js'
import { BREAKER_KEY_TTL_MS, breakerChannel, breakerKey } from './keys.js'
import type { BreakerMachine } from './machine.js'

const script = (name: string): string => readFileSync(new URL(`../../redis/scripts/${name}`, import.meta.url), 'utf8')
const OPEN = { name: 'switchyardBreakerOpen', lua: script('breakerOpen-1.lua') }
const PROBE = { name: 'switchyardBreakerProbe', lua: script('breakerProbe-1.lua') }
const CLOSE = { name: 'switchyardBreakerClose', lua: script('breakerClose-1.lua') }

type ScriptCall = (key: string, ...args: Array<string | number>) => Promise<Array<number | string>>

/** How often shared breakers are read from Redis besides pub/sub messages, in milliseconds. */
export const SHARED_SYNC_MS = 500

/** Longest a probe request waits for Redis to grant it before probing locally, in milliseconds. */
const PROBE_GRANT_TIMEOUT_MS = 500

/** Logged at most this often while Redis is down, in milliseconds. */
const WARN_EVERY_MS = 5000

/** A change announced on the breaker channel (or read back from a breaker hash). */
export interface SharedMessage {
  id: string
  state: 'open' | 'half-open' | 'closed'
  gen: number
  /** Epoch ms on Redis's clock: the open deadline, or the probe lease. */
  openUntil: number
  /** Redis's clock when the message was made. */
  now: number
  by: string
}

export type ProbeVerdict = 'granted' | 'open' | 'probing-elsewhere' | 'closed' | 'local'

/** One breaker's link to its shared state. */
export interface SharedLink {
  /** Announces a local opening; adopts the shared deadline (another instance may have opened it first). */
  opened: () => void
  /** Announces a local close after a successful probe. */
  closed: () => void
  /** Asks Redis for the one probe of the cluster. `local`: Redis is unreachable, the local machine decides. */
  probe: (leaseMs: number) => Promise<ProbeVerdict>
}

interface Member { readonly id: string, readonly machine: BreakerMachine, adoptedGen: number, pendingOpen: number }

export class SharedBreakers {
  readonly #conns: RedisConnections
  readonly #client: Redis
  readonly #prefix: string
  readonly #instanceId: string
  readonly #log: Logger
  readonly #channel: string
  readonly #members = new Map<string, Member>()
  readonly #timer: NodeJS.Timeout
  #lastWarn = 0
  #polling: Promise<void> | undefined
  readonly #onMessage = (channel: string, message: string): void => { if (channel === this.#channel) this.#onChannel(message) }
  readonly #onReady = (): void => { this.sync().catch(() => {}) }

  constructor (conns: RedisConnections, prefix: string, instanceId: string, log: Logger) {
    this.#conns = conns
    this.#client = conns.command
    this.#prefix = prefix
    // Unique even when several instances were given one configured instanceId.
    this.#instanceId = `${instanceId}.${randomUUID().slice(0, 8)}`
    this.#log = log
    this.#channel = breakerChannel(prefix)
    for (const s of [OPEN, PROBE, CLOSE]) {
      if (typeof (this.#client as unknown as Record<string, unknown>)[s.name] !== 'function') this.#client.defineCommand(s.name, { numberOfKeys: 1, lua: s.lua })
    }
    conns.subscriber.on('message', this.#onMessage)
    conns.subscriber.on('ready', this.#onReady)
    conns.subscriber.subscribe(this.#channel).catch((err: unknown) => this.#warn(err, 'subscribe'))
    this.#timer = setInterval(() => { this.sync().catch(() => {}) }, SHARED_SYNC_MS)
    this.#timer.unref()
  }

  /** Whether Redis can be asked now. */
  get ready (): boolean { return this.#client.status === 'ready' }

  /** Resolves true once both connections are ready (false after `timeoutMs`). */
  async waitReady (timeoutMs: number): Promise<boolean> {
    return await this.#conns.waitReady(timeoutMs)
  }

  link (id: string, machine: BreakerMachine): SharedLink {
    const m: Member = { id, machine, adoptedGen: 0, pendingOpen: 0 }
    this.#members.set(id, m)
    const key = breakerKey(this.#prefix, id)
    return {
      opened: () => {
        if (!this.ready) return
        m.pendingOpen++
        this.#call(OPEN.name, key, machine.settings.openMs, this.#instanceId, this.#channel, id, BREAKER_KEY_TTL_MS)
          .then(r => {
            const [opened, gen, until, now] = r.map(Number) as [number, number, number, number]
            m.adoptedGen = Math.max(m.adoptedGen, gen)
            // The cluster shares one deadline (another instance's, when it opened first): half-open
            // here no earlier than Redis would grant the probe.
            if (machine.state === 'open') machine.forceOpen(until - now, opened === 1 ? 'opened here' : 'opened by another instance', 'shared')
          }, (err: unknown) => this.#warn(err, 'open'))
          .finally(() => { m.pendingOpen-- })
      },
      closed: () => {
        if (!this.ready) return
        this.#call(CLOSE.name, key, m.adoptedGen, this.#instanceId, this.#channel, id, BREAKER_KEY_TTL_MS)
          .catch((err: unknown) => this.#warn(err, 'close'))
      },
      probe: async (leaseMs) => {
        if (!this.ready) return 'local'
        let timer: NodeJS.Timeout | undefined
        try {
          const slow = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('redis did not answer in time')), PROBE_GRANT_TIMEOUT_MS) })
          const r = await Promise.race([this.#call(PROBE.name, key, leaseMs, this.#instanceId, this.#channel, id, BREAKER_KEY_TTL_MS), slow])
          const [verdict, gen, until, now] = r.map(Number) as [number, number, number, number]
          m.adoptedGen = Math.max(m.adoptedGen, gen)
          switch (verdict) {
            case 1: return 'granted'
            case 2: return 'closed'
            case 3: machine.holdProbe(until - now); return 'probing-elsewhere'
            default: machine.forceOpen(until - now, 'still open on another instance', 'shared'); return 'open'
          }
        } catch (err) {
          this.#warn(err, 'probe')
          return 'local'
        } finally {
          clearTimeout(timer)
        }
      }
    }
  }

  /** Reads every shared breaker from Redis (coalesced with a read already running). */
  async sync (): Promise<void> {
    this.#polling ??= this.#poll().finally(() => { this.#polling = undefined })
    return await this.#polling
  }

  close (): void {
    clearInterval(this.#timer)
    this.#conns.subscriber.off('message', this.#onMessage)
    this.#conns.subscriber.off('ready', this.#onReady)
    this.#conns.subscriber.unsubscribe(this.#channel).catch(() => {})
  }

  async #poll (): Promise<void> {
    if (!this.ready || this.#members.size === 0) return
    const members = [...this.#members.values()]
    try {
      const [time, ...hashes] = await Promise.all([
        this.#client.time(),
        ...members.map(async m => await this.#client.hgetall(breakerKey(this.#prefix, m.id)))
      ]) as [Array<string | number>, ...Array<Record<string, string>>]
      const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
      members.forEach((m, i) => {
        const h = hashes[i]!
        if (h.state !== 'open' && h.state !== 'closed' && h.state !== 'half-open') return
        const until = h.state === 'half-open' ? Number(h.probeUntil) : Number(h.openUntil)
        this.#apply(m, { id: m.id, state: h.state, gen: Number(h.gen), openUntil: until, now, by: h.by ?? '' })
      })
    } catch (err) {
      this.#log.debug({ err }, 'shared breaker poll failed')
    }
  }

  #onChannel (message: string): void {
    let msg: SharedMessage
    try {
      msg = JSON.parse(message) as SharedMessage
    } catch {
      return
    }
    if (msg.by === this.#instanceId) return // already applied here
    const m = this.#members.get(msg.id)
    if (m !== undefined) this.#apply(m, msg)
  }

  #apply (m: Member, msg: SharedMessage): void {
    const machine = m.machine
    if (!Number.isFinite(msg.gen) || msg.gen < m.adoptedGen) return // an older opening
    switch (msg.state) {
      case 'open': {
        if (msg.gen === m.adoptedGen) return // an opening this instance follows already
        m.adoptedGen = msg.gen
        const remaining = msg.openUntil - msg.now
        if (remaining > 0) machine.forceOpen(remaining, msg.by === this.#instanceId ? 'opened here' : `opened by ${msg.by}`, 'shared')
        return
      }
      case 'half-open':
        // Another instance holds the probe: do not probe here before its lease ends.
        if (msg.by !== this.#instanceId && machine.state === 'half-open') machine.holdProbe(msg.openUntil - msg.now)
        return
      case 'closed':
        if (m.pendingOpen > 0 || msg.gen < m.adoptedGen) return
        if (machine.state !== 'closed') machine.forceClose(msg.by === this.#instanceId ? 'closed here' : `closed by ${msg.by}`, 'shared')
        m.adoptedGen = msg.gen
    }
  }

  async #call (name: string, key: string, ...args: Array<string | number>): Promise<Array<number | string>> {
    return await (this.#client as unknown as Record<string, ScriptCall>)[name]!.call(this.#client, key, ...args)
  }

  #warn (err: unknown, op: string): void {
    const now = Date.now()
    if (now - this.#lastWarn < WARN_EVERY_MS) return
    this.#lastWarn = now
    this.#log.warn({ err: err instanceof Error ? err.message : String(err), op }, 'shared circuit breaker: redis unavailable; deciding locally')
  }
}
