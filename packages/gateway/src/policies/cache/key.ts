/**
 * The cache key (PRODUCT §4.3; Prism's key ignored params, query and body,
 * §9.2). An entry's id is `<path>#<hash>`: the path as the client sent it
 * (params included, as they appear in it), kept readable so that invalidation
 * by path or path prefix works, and a hash of everything that tells responses
 * of that path apart: method (HEAD counts as GET), host, the sorted query (or
 * only the `varyBy.query` parameters), the `varyBy` headers and claims, and
 * for cached methods with a body, the body (or its `varyBy.body` fields).
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { GatewayRequest } from '../../pipeline/types.js'
import { parseRequestBody } from '../../pipeline/body.js'
import type { CacheSettings } from './options.js'

/** Bumped when the key material changes shape, so old entries are not misread. */
const KEY_VERSION = 1

/** Reads a dot path (`a.b.c`) from a value. */
export function getPath (value: unknown, path: string): unknown {
  let v = value
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

/** The query as `k=v&…`, pairs sorted by name then value; only `names` when given. */
export function sortedQuery (raw: string, names: readonly string[] | undefined): string {
  if (raw === '') return ''
  let pairs = [...new URLSearchParams(raw)]
  if (names !== undefined) pairs = pairs.filter(([k]) => names.includes(k))
  if (pairs.length === 0) return ''
  pairs.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)
  return new URLSearchParams(pairs).toString()
}

function headerValue (v: string | string[] | undefined): string | null {
  if (v === undefined) return null
  return Array.isArray(v) ? v.join(', ') : v
}

/** The host the client asked for: X-Forwarded-Host from a trusted proxy, else Host. */
export function requestHost (greq: GatewayRequest): string {
  return (greq.forwardedHost ?? headerValue(greq.headers.host) ?? '').toLowerCase()
}

/**
 * The id of the entry for a request. `body` is the request body's bytes, for
 * cached methods that carry one (undefined otherwise).
 */
export function entryId (greq: GatewayRequest, s: CacheSettings, body: Buffer | undefined): string {
  if (body !== undefined || s.varyHeaders.length > 0 || s.varyClaims.length > 0) return materialId(greq, s, body)
  // Method, host, path and query only: the id by what the client sent, without sorting the query.
  const method = greq.method === 'HEAD' ? 'GET' : greq.method
  const sent = `${method}\n${requestHost(greq)}\n${greq.path}?${greq.rawQuery}`
  let memo = plainIds.get(s)
  if (memo === undefined) { memo = new PlainIds(); plainIds.set(s, memo) }
  let id = memo.ids.get(sent)
  if (id === undefined) {
    id = materialId(greq, s, undefined)
    memo.add(sent, id)
  }
  return id
}

/**
 * Ids of the keys made of method, host, path and query alone, by the request
 * line as sent (one map per route's settings): a hit needs one string and one
 * Map lookup, not the sorted query, the key material and `recentIds` (~1.5 µs
 * of a ~40 µs hit). Cleared when it reaches 10,000 ids or 4 MiB of keys.
 */
class PlainIds {
  readonly ids = new Map<string, string>()
  #chars = 0
  add (sent: string, id: string): void {
    if (this.ids.size >= 10_000 || this.#chars > 2 * 1024 * 1024) { this.ids.clear(); this.#chars = 0 }
    this.ids.set(sent, id)
    this.#chars += sent.length + id.length
  }
}

const plainIds = new WeakMap<CacheSettings, PlainIds>()

function materialId (greq: GatewayRequest, s: CacheSettings, body: Buffer | undefined): string {
  const material: unknown[] = [
    KEY_VERSION,
    greq.method === 'HEAD' ? 'GET' : greq.method,
    requestHost(greq),
    greq.path,
    sortedQuery(greq.rawQuery, s.varyQuery)
  ]
  if (s.varyHeaders.length > 0) material.push(s.varyHeaders.map(h => headerValue(greq.headers[h])))
  if (s.varyClaims.length > 0) material.push(s.varyClaims.map(c => jsonOrNull(getPath(greq.claims, c))))
  if (body !== undefined) {
    const parsed = s.varyBody === undefined ? undefined : parseOrUndefined(body, greq.headers['content-type'])
    // A body that does not parse is keyed by all its bytes: the service, not the cache, answers for it.
    if (s.varyBody === undefined || parsed === undefined) material.push(createHash('sha256').update(body).digest('base64url'))
    else material.push(s.varyBody.map(f => jsonOrNull(getPath(parsed.value, f))))
  }
  const text = JSON.stringify(material)
  let id = recentIds.get(text)
  if (id === undefined) {
    id = `${greq.path}#${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`
    recentIds.set(text, id)
  }
  return id
}

/**
 * Ids of recently seen keys: the hash is a pure function of the key material,
 * and hashing it on every hit cost ~8 µs of a ~70 µs cache hit. Bounded by
 * count and by bytes (the material includes the query and varied headers).
 */
const recentIds = new LRUCache<string, string>({ max: 10_000, maxSize: 8 * 1024 * 1024, sizeCalculation: (v, k) => v.length + k.length })

function parseOrUndefined (body: Buffer, contentType: string | string[] | undefined): { value: unknown } | undefined {
  try {
    return { value: body.length === 0 ? undefined : parseRequestBody(body, contentType) }
  } catch {
    return undefined
  }
}

function jsonOrNull (v: unknown): string | null {
  return v === undefined ? null : JSON.stringify(v)
}

/** Escapes Redis glob characters (`SCAN MATCH`). */
function globEscape (s: string): string {
  return s.replace(/[*?[\]\\]/g, c => `\\${c}`)
}

/**
 * Every Redis key and channel of the cache, as `<prefix>:cache:<kind>:<name>`
 * (STYLE §3). Belongs in protocol/keys.ts beside the others.
 */
export class CacheKeys {
  readonly #base: string
  /** Channel: `{"id","stored"}` when an entry was stored or a fill lease released. */
  readonly fillChannel: string
  /** Channel: an invalidation every instance applies to its in-process tier. */
  readonly invalidateChannel: string
  /** Channel: instances acknowledge an invalidation with its id. */
  readonly ackChannel: string

  constructor (prefix: string) {
    this.#base = `${prefix}:cache:`
    this.fillChannel = `${this.#base}fill`
    this.invalidateChannel = `${this.#base}invalidate`
    this.ackChannel = `${this.#base}invalidated`
  }

  /** A HASH: status, headers (JSON), body (bytes), storedAt (ms, Redis clock), ttl, swr, sie (ms), tags (JSON). */
  entry (id: string): string { return `${this.#base}entry:${id}` }
  /** A string holding the lease token of the instance filling an entry (`SET NX PX lockMs`). */
  lock (id: string): string { return `${this.#base}lock:${id}` }
  /** A SET of entry keys carrying the tag. */
  tag (tag: string): string { return `${this.#base}tag:${tag}` }
  /** The entry id of an entry key. */
  idOf (entryKey: string): string { return entryKey.slice(`${this.#base}entry:`.length) }
  /** `SCAN MATCH` pattern for entries whose id starts with `idPrefix`. */
  entryPattern (idPrefix: string): string { return `${globEscape(this.entry(idPrefix))}*` }
}
