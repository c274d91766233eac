/**
 * The HTTP rules the cache follows: `Cache-Control` (RFC 9111 §5.2; RFC 5861
 * for stale-while-revalidate / stale-if-error), which responses may be
 * stored, tags from `Cache-Tag` / `Surrogate-Key`, and the `Cache-Status`
 * field (RFC 9211).
 */
import type { GatewayResponse } from '../../pipeline/types.js'
import { PARTIAL_HEADER } from '../../pipeline/route.js'
import type { CacheSettings } from './options.js'

export interface CacheControl {
  noStore: boolean
  noCache: boolean
  private: boolean
  public: boolean
  mustRevalidate: boolean
  /** Seconds. */
  maxAge?: number
  sMaxAge?: number
  staleWhileRevalidate?: number
  staleIfError?: number
}

/**
 * No directives. A fresh literal each call, not `{ ...EMPTY }`: the optional
 * fields parseCacheControl adds would each take V8's slow path on a spread
 * copy (pipeline/objects.ts).
 */
function noDirectives (): CacheControl {
  return { noStore: false, noCache: false, private: false, public: false, mustRevalidate: false }
}

const EMPTY: CacheControl = Object.freeze(noDirectives())

/** Splits on commas outside quoted strings (`private="a, b"`). */
function directives (value: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (const ch of value) {
    if (ch === '"') quoted = !quoted
    if (ch === ',' && !quoted) { out.push(cur); cur = '' } else cur += ch
  }
  out.push(cur)
  return out.map(d => d.trim()).filter(d => d !== '')
}

function seconds (v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v.replace(/^"|"$/g, ''))
  return Number.isInteger(n) && n >= 0 ? n : undefined
}

export function parseCacheControl (header: string | string[] | undefined): CacheControl {
  if (header === undefined) return EMPTY
  const cc = noDirectives()
  for (const d of directives(Array.isArray(header) ? header.join(',') : header)) {
    const eq = d.indexOf('=')
    const name = (eq === -1 ? d : d.slice(0, eq)).trim().toLowerCase()
    const arg = eq === -1 ? undefined : d.slice(eq + 1).trim()
    switch (name) {
      case 'no-store': cc.noStore = true; break
      case 'no-cache': cc.noCache = true; break
      case 'private': cc.private = true; break
      case 'public': cc.public = true; break
      case 'must-revalidate': case 'proxy-revalidate': cc.mustRevalidate = true; break
      case 'max-age': { const s = seconds(arg); if (s !== undefined) cc.maxAge = s; break }
      case 's-maxage': { const s = seconds(arg); if (s !== undefined) cc.sMaxAge = s; break }
      case 'stale-while-revalidate': { const s = seconds(arg); if (s !== undefined) cc.staleWhileRevalidate = s; break }
      case 'stale-if-error': { const s = seconds(arg); if (s !== undefined) cc.staleIfError = s; break }
    }
  }
  return cc
}

/** Request-side directives: whether the client asks to refetch, or not to store. */
export function requestDirectives (headers: Record<string, string | string[] | undefined>): { revalidate: boolean, noStore: boolean } {
  const raw = headers['cache-control']
  if (raw === undefined) {
    const pragma = headers.pragma
    return { revalidate: pragma !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(String(pragma)), noStore: false }
  }
  const cc = parseCacheControl(raw)
  return { revalidate: cc.noCache || cc.maxAge === 0, noStore: cc.noStore }
}

/** Headers that carry a response's tags to the cache; never sent to clients. */
export const TAG_HEADERS = ['cache-tag', 'surrogate-key'] as const
const MAX_TAGS = 100
const MAX_TAG_LENGTH = 256

/** Tags of a response: `Cache-Tag` and `Surrogate-Key` (space or comma separated) plus the route's own. */
export function responseTags (headers: GatewayResponse['headers'], routeTags: readonly string[]): string[] {
  const tags = new Set(routeTags)
  for (const h of TAG_HEADERS) {
    const v = headers[h]
    if (v === undefined) continue
    for (const t of (Array.isArray(v) ? v.join(' ') : v).split(/[\s,]+/)) {
      if (t !== '' && t.length <= MAX_TAG_LENGTH && tags.size < MAX_TAGS) tags.add(t)
    }
  }
  return [...tags]
}

/** Removes the tag headers (they are for the cache, not for clients). */
export function stripTagHeaders (headers: GatewayResponse['headers']): void {
  for (const h of TAG_HEADERS) delete headers[h]
}

export type StoreDecision =
  | { store: true, ttlMs: number, swrMs: number, sieMs: number }
  | { store: false, reason: string }

export interface RequestFacts {
  /** The request carried `Authorization` (RFC 9111 §3.5). */
  authorization: boolean
  /** The request said `Cache-Control: no-store`. */
  noStore: boolean
}

/**
 * Whether a response may be stored, and for how long: `s-maxage`, else
 * `max-age`, else the configured TTL; the response's stale-while-revalidate /
 * stale-if-error override the configured windows, and must-revalidate turns
 * both off. The reason, when not stored, goes into Cache-Status `detail`.
 */
export function storeDecision (res: GatewayResponse, s: CacheSettings, req: RequestFacts): StoreDecision {
  const h = res.headers
  if (req.noStore) return { store: false, reason: 'request-no-store' }
  if (!s.statuses.has(res.status)) return { store: false, reason: 'status' }
  if (h[PARTIAL_HEADER] !== undefined) return { store: false, reason: 'partial' }
  if (h['set-cookie'] !== undefined) return { store: false, reason: 'set-cookie' }
  const cc = parseCacheControl(h['cache-control'])
  if (cc.noStore) return { store: false, reason: 'no-store' }
  if (cc.private) return { store: false, reason: 'private' }
  // no-cache: every use needs a revalidation this cache does not make.
  if (cc.noCache) return { store: false, reason: 'no-cache' }
  const vary = h.vary
  if (vary !== undefined) {
    for (const name of (Array.isArray(vary) ? vary.join(',') : vary).split(',')) {
      const n = name.trim().toLowerCase()
      if (n !== '' && !s.varyHeaders.includes(n)) return { store: false, reason: 'vary' }
    }
  }
  if (req.authorization && !s.variesByIdentity && !cc.public && cc.sMaxAge === undefined && !cc.mustRevalidate) return { store: false, reason: 'authorization' }
  const ttlS = cc.sMaxAge ?? cc.maxAge
  const ttlMs = ttlS !== undefined ? ttlS * 1000 : s.ttlMs
  if (ttlMs === undefined || ttlMs <= 0) return { store: false, reason: 'no-ttl' }
  const cl = h['content-length']
  if (typeof cl === 'string' && Number(cl) > s.maxSize) return { store: false, reason: 'too-big' }
  const swrMs = cc.mustRevalidate ? 0 : cc.staleWhileRevalidate !== undefined ? cc.staleWhileRevalidate * 1000 : s.swrMs
  const sieMs = cc.mustRevalidate ? 0 : cc.staleIfError !== undefined ? cc.staleIfError * 1000 : s.sieMs
  return { store: true, ttlMs, swrMs, sieMs }
}

/** One member of the `Cache-Status` field (RFC 9211 §2). */
export interface CacheStatus {
  hit?: boolean
  fwd?: 'bypass' | 'method' | 'miss' | 'request' | 'stale'
  fwdStatus?: number
  stored?: boolean
  collapsed?: boolean
  /** Remaining freshness in seconds; negative when stale. */
  ttlS?: number
  key?: string
  detail?: string
}

/** The name this cache uses in `Cache-Status`. */
export const CACHE_NAME = 'Switchyard'

function sfString (s: string): string | undefined {
  // sf-string allows printable ASCII only.
  if (!/^[\x20-\x7e]*$/.test(s)) return undefined
  return `"${s.replace(/[\\"]/g, c => `\\${c}`)}"`
}

export function formatCacheStatus (st: CacheStatus, ttlS = st.ttlS, key = st.key): string {
  let out = CACHE_NAME
  if (st.hit === true) out += '; hit'
  if (st.fwd !== undefined) out += `; fwd=${st.fwd}`
  if (st.fwdStatus !== undefined) out += `; fwd-status=${st.fwdStatus}`
  if (st.stored === true) out += '; stored'
  if (st.collapsed === true) out += '; collapsed'
  if (ttlS !== undefined) out += `; ttl=${ttlS}`
  if (key !== undefined) {
    const k = sfString(key)
    if (k !== undefined) out += `; key=${k}`
  }
  if (st.detail !== undefined) out += `; detail=${st.detail}`
  return out
}

/** Adds this cache's member after any upstream cache's (the last member is the one nearest the client). */
export function appendCacheStatus (headers: GatewayResponse['headers'], value: string): void {
  const prev = headers['cache-status']
  headers['cache-status'] = prev === undefined ? value : `${Array.isArray(prev) ? prev.join(', ') : prev}, ${value}`
}
