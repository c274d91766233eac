/**
 * Concurrency slots and in-flight tracking shared by both consumers.
 */

/** A FIFO semaphore: `concurrency` slots; waiters are served in arrival order. */
export class Slots {
  readonly size: number
  #free: number
  readonly #acquirers: Array<() => void> = []
  #freeWaiters: Array<() => void> = []

  constructor (size: number) {
    this.size = size
    this.#free = size
  }

  /** Slots nobody holds or waits for. */
  get free (): number { return this.#free }
  get active (): number { return this.size - this.#free }
  /** Callers waiting for a slot. */
  get queued (): number { return this.#acquirers.length }

  tryAcquire (): boolean {
    if (this.#free === 0) return false
    this.#free--
    return true
  }

  async acquire (): Promise<void> {
    if (this.tryAcquire()) return
    await new Promise<void>(resolve => this.#acquirers.push(resolve))
  }

  release (): void {
    const next = this.#acquirers.shift()
    if (next !== undefined) { next(); return }
    this.#free++
    const waiters = this.#freeWaiters
    this.#freeWaiters = []
    for (const w of waiters) w()
  }

  /** Resolves once at least one slot is free (without taking it). */
  async whenFree (): Promise<void> {
    if (this.#free > 0) return
    await new Promise<void>(resolve => this.#freeWaiters.push(resolve))
  }
}

/** Tracks running work so `close()` can wait for it. */
export class Tracker {
  readonly #tasks = new Set<Promise<unknown>>()

  get size (): number { return this.#tasks.size }

  /** Runs `work`, tracked until it settles; rejections are the caller's to handle. */
  track<T> (work: Promise<T>): Promise<T> {
    this.#tasks.add(work)
    const done = (): void => { this.#tasks.delete(work) }
    work.then(done, done)
    return work
  }

  /** Resolves `true` once nothing runs (work started meanwhile included), `false` after `timeoutMs`. */
  async drain (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>(resolve => { timer = setTimeout(() => resolve(false), timeoutMs) })
    try {
      while (this.#tasks.size > 0) {
        const all = Promise.allSettled([...this.#tasks]).then(() => true as const)
        if (!await Promise.race([all, timeout])) return false
      }
      return true
    } finally {
      clearTimeout(timer)
    }
  }
}
