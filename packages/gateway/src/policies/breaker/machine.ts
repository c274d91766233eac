/**
 * The circuit breaker state machine (PRODUCT §4.4), pure: no I/O, the
 * process clock (`Date.now`, `setTimeout`, so fake timers drive it in tests).
 *
 *   closed ──(N consecutive failures | failure rate over the window | maxErrors within duration)──▶ open
 *   open ──(openMs elapsed)──▶ half-open ──(the one probe succeeds)──▶ closed
 *                                   └──────(the probe fails)──────────▶ open
 *
 * Every change of state starts a new generation: a call admitted in an earlier
 * one (say, still in flight when the breaker opened) is not counted, so old
 * successes cannot close an open breaker and old failures cannot reopen it.
 * The breaker's own refusals are never counted at all.
 *
 * State is serializable (`toJSON`, and `initialState` to restore it), as cockatiel's.
 */

export type CircuitState = 'closed' | 'open' | 'half-open'

/** Validated settings (breaker/options.ts). */
export interface BreakerSettings {
  /** Open after this many failures in a row. */
  readonly consecutiveFailures: number | undefined
  /** Open when failures / calls over `windowMs` reaches this (0–1]… */
  readonly failureRate: number | undefined
  /** …once the window holds at least this many calls. */
  readonly minimumCalls: number
  readonly windowMs: number
  /** Prism: open at `maxErrors` failures within `maxErrorsWindowMs`. */
  readonly maxErrors: number | undefined
  readonly maxErrorsWindowMs: number
  /** How long it stays open before the half-open probe, in milliseconds. */
  readonly openMs: number
}

/** A serializable snapshot (`toJSON`); pass it back as `initialState`. */
export interface BreakerSnapshot {
  state: CircuitState
  /** Epoch ms of the last change of state. */
  since: number
  /** Epoch ms at which an open breaker half-opens (open only). */
  openUntil?: number
  consecutiveFailures: number
  /** Epoch ms of recent failures (Prism's `maxErrors`), oldest first. */
  recentFailures: number[]
  /** The failure-rate window: `[bucketStartMs, calls, failures]`, oldest first. */
  window: Array<[number, number, number]>
}

/** A call the breaker let through; report its outcome with `record`. */
export interface Permit {
  readonly gen: number
  /** The half-open probe. */
  readonly probe: boolean
}

export type Admission = { ok: true, permit: Permit } | { ok: false, retryAfterMs: number }

/** `ignore`: neither success nor failure (the client went away, a 4xx the client caused). */
export type Outcome = 'success' | 'failure' | 'ignore'

export interface Transition {
  from: CircuitState
  to: CircuitState
  /** Why, e.g. "5 consecutive failures". */
  reason: string
  /** `local`: this instance's calls; `shared`: another instance, through Redis. */
  source: 'local' | 'shared'
  /** Epoch ms at which it half-opens (to: open). */
  openUntil?: number
}

export interface MachineOptions {
  initialState?: BreakerSnapshot | undefined
  onTransition?: ((t: Transition) => void) | undefined
}

/** Buckets of the failure-rate window. */
const BUCKETS = 10
/** Retry-After while a probe is in flight. */
const PROBE_PENDING_RETRY_MS = 1000

export class BreakerMachine {
  readonly settings: BreakerSettings
  #state: CircuitState = 'closed'
  #since = Date.now()
  #gen = 0
  #openUntil = 0
  #consecutive = 0
  #recentFailures: number[] = []
  #window: Array<[number, number, number]> = []
  #probeInFlight = false
  /** Half-open, but another instance holds the probe until then (epoch ms). */
  #probeHeldUntil = 0
  #timer: NodeJS.Timeout | undefined
  readonly #onTransition: ((t: Transition) => void) | undefined

  constructor (settings: BreakerSettings, options: MachineOptions = {}) {
    this.settings = settings
    this.#onTransition = options.onTransition
    const s = options.initialState
    if (s !== undefined) {
      this.#state = s.state
      this.#since = s.since
      this.#consecutive = s.consecutiveFailures
      this.#recentFailures = [...s.recentFailures]
      this.#window = s.window.map(b => [b[0], b[1], b[2]])
      if (s.state === 'open') {
        this.#openUntil = s.openUntil ?? Date.now()
        this.#schedule()
      }
    }
  }

  get state (): CircuitState {
    if (this.#state === 'open' && Date.now() >= this.#openUntil) this.#halfOpen()
    return this.#state
  }

  /** The current generation (changes with every change of state). */
  get gen (): number { return this.#gen }

  /** Epoch ms at which an open breaker half-opens (0 when not open). */
  get openUntil (): number { return this.#state === 'open' ? this.#openUntil : 0 }

  /**
   * Lets a call through, or refuses it with how long to wait. Synchronous, so
   * that among concurrent requests exactly one becomes the half-open probe.
   */
  admit (): Admission {
    const state = this.state
    if (state === 'closed') return { ok: true, permit: { gen: this.#gen, probe: false } }
    const now = Date.now()
    if (state === 'open') return { ok: false, retryAfterMs: this.#openUntil - now }
    if (this.#probeInFlight) return { ok: false, retryAfterMs: PROBE_PENDING_RETRY_MS }
    if (now < this.#probeHeldUntil) return { ok: false, retryAfterMs: Math.max(PROBE_PENDING_RETRY_MS, this.#probeHeldUntil - now) }
    this.#probeInFlight = true
    return { ok: true, permit: { gen: this.#gen, probe: true } }
  }

  /** Reports how an admitted call went. */
  record (permit: Permit, outcome: Outcome): void {
    if (permit.gen !== this.#gen) return // admitted before the last change of state
    if (permit.probe) {
      this.#probeInFlight = false
      if (outcome === 'success') this.#close('the half-open probe succeeded', 'local')
      else if (outcome === 'failure') this.#open(this.settings.openMs, 'the half-open probe failed', 'local')
      return
    }
    if (outcome === 'ignore' || this.#state !== 'closed') return
    const now = Date.now()
    const failed = outcome === 'failure'
    this.#sample(now, failed)
    if (!failed) { this.#consecutive = 0; return }
    this.#consecutive++
    const s = this.settings
    if (s.consecutiveFailures !== undefined && this.#consecutive >= s.consecutiveFailures) {
      this.#open(s.openMs, `${this.#consecutive} consecutive failures`, 'local')
      return
    }
    if (s.maxErrors !== undefined) {
      this.#recentFailures.push(now)
      if (this.#recentFailures.length > s.maxErrors) this.#recentFailures.shift()
      if (this.#recentFailures.length >= s.maxErrors && this.#recentFailures[0]! > now - s.maxErrorsWindowMs) {
        this.#open(s.openMs, `${s.maxErrors} failures within ${s.maxErrorsWindowMs} ms`, 'local')
        return
      }
    }
    if (s.failureRate !== undefined) {
      let calls = 0; let failures = 0
      for (const b of this.#window) { calls += b[1]; failures += b[2] }
      if (calls >= s.minimumCalls && failures / calls >= s.failureRate) {
        this.#open(s.openMs, `${failures} of ${calls} calls failed within ${s.windowMs} ms`, 'local')
      }
    }
  }

  /** A probe that was granted but not used (another instance probes, say): others may probe again. */
  release (permit: Permit): void {
    if (permit.probe && permit.gen === this.#gen) this.#probeInFlight = false
  }

  /** Half-open, but another instance holds the probe for `ms`: refuse until then. */
  holdProbe (ms: number): void {
    if (this.state === 'half-open') this.#probeHeldUntil = Date.now() + ms
  }

  /**
   * Opens for exactly `ms` from now (another instance opened it, through
   * Redis). When already open, only the deadline changes.
   */
  forceOpen (ms: number, reason: string, source: 'local' | 'shared'): void {
    if (this.#state === 'open') {
      this.#openUntil = Date.now() + ms
      this.#schedule()
      return
    }
    this.#open(ms, reason, source)
  }

  forceClose (reason: string, source: 'local' | 'shared'): void {
    if (this.#state !== 'closed') this.#close(reason, source)
  }

  toJSON (): BreakerSnapshot {
    const state = this.state
    const out: BreakerSnapshot = {
      state,
      since: this.#since,
      consecutiveFailures: this.#consecutive,
      recentFailures: [...this.#recentFailures],
      window: this.#window.map(b => [b[0], b[1], b[2]])
    }
    if (state === 'open') out.openUntil = this.#openUntil
    return out
  }

  /** Stops the half-open timer. */
  dispose (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #sample (now: number, failed: boolean): void {
    const s = this.settings
    if (s.failureRate === undefined) return
    const width = Math.max(1, Math.ceil(s.windowMs / BUCKETS))
    const start = now - (now % width)
    while (this.#window.length > 0 && this.#window[0]![0] <= now - s.windowMs) this.#window.shift()
    let last = this.#window[this.#window.length - 1]
    if (last === undefined || last[0] !== start) {
      last = [start, 0, 0]
      this.#window.push(last)
    }
    last[1]++
    if (failed) last[2]++
  }

  #transition (to: CircuitState, reason: string, source: 'local' | 'shared'): void {
    const from = this.#state
    this.#state = to
    this.#since = Date.now()
    this.#gen++
    this.#probeInFlight = false
    this.#probeHeldUntil = 0
    const t: Transition = { from, to, reason, source }
    if (to === 'open') t.openUntil = this.#openUntil
    this.#onTransition?.(t)
  }

  #open (ms: number, reason: string, source: 'local' | 'shared'): void {
    this.#openUntil = Date.now() + ms
    this.#reset()
    this.#transition('open', reason, source)
    this.#schedule()
  }

  #halfOpen (): void {
    this.dispose()
    this.#transition('half-open', `open for ${this.settings.openMs} ms`, 'local')
  }

  #close (reason: string, source: 'local' | 'shared'): void {
    this.dispose()
    this.#reset()
    this.#transition('closed', reason, source)
  }

  #reset (): void {
    this.#consecutive = 0
    this.#recentFailures = []
    this.#window = []
  }

  /** Half-opens on time even without traffic, so the change is visible (states, logs) and awaitable. */
  #schedule (): void {
    clearTimeout(this.#timer)
    const gen = this.#gen
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#gen === gen && this.#state === 'open' && Date.now() >= this.#openUntil) this.#halfOpen()
      else if (this.#state === 'open') this.#schedule()
    }, Math.max(0, this.#openUntil - Date.now()))
    this.#timer.unref?.()
  }
}
