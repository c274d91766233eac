/**
 * A stored response and its lifetimes. Times are local and monotonic
 * (`performance.now()`); an entry read from Redis carries its age as Redis
 * measured it, so clock skew between gateway machines does not bend a TTL.
 */
import { LRUCache } from 'lru-cache'
import { copyOwn } from '../../pipeline/objects.js'
import type { GatewayResponse } from '../../pipeline/types.js'

export interface Entry {
  readonly id: string
  readonly status: number
  /** Headers as stored: no Content-Length, tags, Set-Cookie or hop-by-hop headers. */
  readonly headers: Readonly<Record<string, string | string[]>>
  readonly body: Buffer
  /** When it was stored, on this process's monotonic clock (ms). */
  readonly storedAt: number
  readonly ttlMs: number
  readonly swrMs: number
  readonly sieMs: number
  readonly tags: readonly string[]
}

export function now (): number {
  return performance.now()
}

export function ageOf (e: Entry, at = now()): number {
  return Math.max(0, at - e.storedAt)
}

/** How long the entry lives in any tier: fresh, then stale for the longer grace window. */
export function lifetimeOf (e: Pick<Entry, 'ttlMs' | 'swrMs' | 'sieMs'>): number {
  return e.ttlMs + Math.max(e.swrMs, e.sieMs)
}

export type Freshness = 'fresh' | 'stale-while-revalidate' | 'stale-if-error' | 'expired'

export function freshness (e: Entry, at = now()): Freshness {
  const age = ageOf(e, at)
  if (age < e.ttlMs) return 'fresh'
  const over = age - e.ttlMs
  if (over < e.swrMs) return 'stale-while-revalidate'
  if (over < e.sieMs) return 'stale-if-error'
  return 'expired'
}

/** Whether a stale entry may answer for a failed upstream. */
export function usableIfError (e: Entry | undefined, at = now()): e is Entry {
  return e !== undefined && ageOf(e, at) - e.ttlMs < e.sieMs
}

/** Remaining freshness in whole seconds (negative when stale), for Cache-Status `ttl`. */
export function ttlSeconds (e: Entry, at = now()): number {
  const left = (e.ttlMs - ageOf(e, at)) / 1000
  // Rounded away from zero: a fresh entry never shows 0, a stale one always shows a negative ttl.
  return left > 0 ? Math.ceil(left) : Math.min(-1, Math.floor(left))
}

/** The client's response from an entry: the stored headers, `Age`, and the given Cache-Status. */
export function responseOf (e: Entry, cacheStatus: string, withAge: boolean, at = now()): GatewayResponse {
  const headers = copyOwn(e.headers)
  if (withAge) headers.age = String(Math.floor(ageOf(e, at) / 1000))
  const prev = headers['cache-status']
  headers['cache-status'] = prev === undefined ? cacheStatus : `${Array.isArray(prev) ? prev.join(', ') : prev}, ${cacheStatus}`
  return { status: e.status, headers, body: e.body }
}

function sizeOf (e: Entry): number {
  let n = 256 + e.id.length * 2 + e.body.length
  for (const [k, v] of Object.entries(e.headers)) n += k.length + (Array.isArray(v) ? v.reduce((a, x) => a + x.length, 0) : v.length)
  for (const t of e.tags) n += t.length
  return n
}

/** What an invalidation removes. */
export interface InvalidateSelector {
  /** Entries carrying any of these tags. */
  tags?: string[]
  /** Entry ids (`<path>#<hash>`, as in Cache-Status `key`), or paths: a path without `#` removes every entry of that path. */
  keys?: string[]
  /** Entries whose id (path) starts with this; `""` removes everything. */
  prefix?: string
}

export function matches (e: Entry, sel: InvalidateSelector): boolean {
  if (sel.tags !== undefined && sel.tags.some(t => e.tags.includes(t))) return true
  if (sel.keys !== undefined && sel.keys.some(k => k.includes('#') ? e.id === k : e.id.startsWith(`${k}#`))) return true
  if (sel.prefix !== undefined && e.id.startsWith(sel.prefix)) return true
  return false
}

/** The in-process tier: an LRU bounded in bytes (lru-cache `maxSize`), each entry dropped after its lifetime. */
export class MemoryTier {
  readonly #lru: LRUCache<string, Entry>

  constructor (maxBytes: number) {
    this.#lru = new LRUCache<string, Entry>({ maxSize: maxBytes, sizeCalculation: sizeOf })
  }

  get (id: string): Entry | undefined {
    return this.#lru.get(id)
  }

  set (e: Entry): void {
    this.#lru.set(e.id, e, { ttl: Math.max(1, Math.ceil(lifetimeOf(e) - ageOf(e))) })
  }

  delete (id: string): void {
    this.#lru.delete(id)
  }

  /** Removes the matching entries; returns how many. */
  invalidate (sel: InvalidateSelector): number {
    const gone: string[] = []
    for (const [id, e] of this.#lru.entries()) if (matches(e, sel)) gone.push(id)
    for (const id of gone) this.#lru.delete(id)
    return gone.length
  }

  clear (): void { this.#lru.clear() }

  get bytes (): number { return this.#lru.calculatedSize }
  get entries (): number { return this.#lru.size }
}
