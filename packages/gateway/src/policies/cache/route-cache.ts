/**
 * The cache of one route (PRODUCT §4.3). It wraps the route's handler, so what
 * it stores is the final, merged response. A request is answered from:
 *
 *   1. the in-process tier (fresh; or stale within stale-while-revalidate,
 *      with one background refresh);
 *   2. a fill already running in this instance (single-flight: the request
 *      joins it);
 *   3. Redis — one script reads the entry and, when it is missing or stale,
 *      takes the fill lease (SET NX PX) in the same step. Whoever takes it
 *      goes upstream; the others wait for the fill notification (pub/sub,
 *      re-checking every 250 ms, at most `lockMs`), then read the entry, or
 *      go upstream themselves when the filler could not store;
 *   4. upstream, storing the answer in both tiers when it may be stored, or
 *      serving a stale entry within stale-if-error when upstream fails.
 *
 * When Redis is down, steps 1, 2 and 4 still run: the in-process tier keeps
 * answering and misses go upstream (single-flight within each instance only).
 */
import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { GatewayError, isGatewayError } from '@switchyard/protocol'
import { readBody } from '../../pipeline/body.js'
import type { GatewayRequest, GatewayResponse } from '../../pipeline/types.js'
import type { Handler, Policy } from '../types.js'
import { freshness, now, responseOf, ttlSeconds, usableIfError, type Entry, type MemoryTier } from './entry.js'
import { appendCacheStatus, formatCacheStatus, requestDirectives, responseTags, storeDecision, stripTagHeaders, type CacheStatus, type StoreDecision } from './http-semantics.js'
import { entryId } from './key.js'
import type { CacheSettings } from './options.js'
import type { LookupResult } from './redis-tier.js'
import { discard, type CacheRuntime, type FlightOutcome, type Outcome, type OutcomeCounts } from './runtime.js'

const hitStatus = new WeakMap<Entry, { ttlS: number | undefined, value: string }>()

/** How often a waiting instance re-reads the entry in case a fill notification was missed, in ms. */
const RECHECK_MS = 250

/** Response headers never stored: recomputed per response, or only true of one exchange. */
const NOT_STORED = new Set(['content-length', 'age', 'set-cookie', 'x-request-id', 'cache-tag', 'surrogate-key'])

/** Methods whose request body is part of the key (when they are cached at all). */
const BODYLESS = new Set(['GET', 'HEAD'])

const PASS: FlightOutcome = { kind: 'pass' }

interface Ctx {
  readonly greq: GatewayRequest
  readonly id: string
  /** The request body's bytes, for cached methods with a body. */
  readonly body: Buffer | undefined
  readonly noStore: boolean
  readonly authorization: boolean
}

interface FetchOptions {
  /** A stale entry that may answer if upstream fails. */
  stale: Entry | undefined
  /** The fill lease this request holds. */
  token: string | undefined
  /** The answer is fetched because the client asked to revalidate. */
  revalidate: boolean
  /** A background refresh: nobody reads the response. */
  background: boolean
}

interface Answer { response: GatewayResponse, outcome: FlightOutcome }

export interface RouteCacheOptions {
  /** The route's pattern, for the metrics label. */
  route: string
  /** The route's own method (`ALL`, `GET`, …): a HEAD request on a non-HEAD route fills GET's entry. */
  method: string
  /** The route's request body limit, in bytes. */
  bodyLimit: number
}

export class RouteCache {
  readonly #s: CacheSettings
  readonly #rt: CacheRuntime
  readonly #memory: MemoryTier | undefined
  readonly #o: RouteCacheOptions
  readonly #counts: OutcomeCounts

  constructor (settings: CacheSettings, rt: CacheRuntime, options: RouteCacheOptions) {
    this.#s = settings
    this.#rt = rt
    this.#o = options
    this.#memory = rt.memoryFor(settings.memory)
    this.#counts = rt.counts(options.route)
  }

  policy (): Policy {
    const wrap = (next: Handler): Handler => {
      const self = this
      return async function cache (greq: GatewayRequest): Promise<GatewayResponse> {
        self.#rt.active++
        try {
          return await self.#handle(greq, next)
        } finally {
          self.#rt.active--
        }
      }
    }
    if (this.#memory === undefined) return wrap
    return Object.assign(wrap, { probe: (greq: GatewayRequest) => this.#probe(greq) })
  }

  /**
   * A fresh in-process hit, answered synchronously (`Policy.probe`): the same
   * answer #handle gives, for the requests whose key needs no body. Anything
   * else (a miss, a stale entry, a revalidation, a range) returns undefined
   * and goes through #handle.
   */
  #probe (greq: GatewayRequest): GatewayResponse | undefined {
    const s = this.#s
    if (!BODYLESS.has(greq.method) || !s.methods.has(greq.method) || greq.headers.range !== undefined) return undefined
    if (s.requestNoCache === 'revalidate' && requestDirectives(greq.headers).revalidate) return undefined
    const mem = this.#memory?.get(entryId(greq, s, undefined))
    if (mem === undefined) return undefined
    const at = now()
    if (freshness(mem, at) !== 'fresh') return undefined
    return this.#serve(mem, { hit: true, detail: 'memory' }, 'hit', at)
  }

  async #handle (greq: GatewayRequest, next: Handler): Promise<GatewayResponse> {
    const s = this.#s
    if (!s.methods.has(greq.method)) return await this.#bypass(greq, next, { fwd: 'method' })
    // A range answer is part of a representation: never stored, and the whole one is not sent for it.
    if (greq.headers.range !== undefined) return await this.#bypass(greq, next, { fwd: 'bypass', detail: 'range' })
    const req = requestDirectives(greq.headers)
    const revalidate = req.revalidate && s.requestNoCache === 'revalidate'
    const body = await this.#keyBody(greq)
    const ctx: Ctx = { greq, id: entryId(greq, s, body), body, noStore: req.noStore, authorization: greq.headers.authorization !== undefined }

    let stale: Entry | undefined
    const mem = revalidate ? undefined : this.#memory?.get(ctx.id)
    if (mem !== undefined) {
      const at = now()
      switch (freshness(mem, at)) {
        case 'fresh': return this.#serve(mem, { hit: true, detail: 'memory' }, 'hit', at)
        case 'stale-while-revalidate':
          this.#refresh(ctx, next, undefined)
          return this.#serve(mem, { hit: true, detail: 'stale-while-revalidate' }, 'stale', at)
        case 'stale-if-error': stale = mem; break
        case 'expired': break
      }
    }

    const flight = this.#rt.flights.get(ctx.id)
    if (flight !== undefined) {
      const out = await flight
      if (out.kind === 'entry') return this.#serve(out.entry, out.status, out.outcome)
      // The answer of the request this one joined could not be shared (e.g. Set-Cookie): ask upstream too.
      return (await this.#fetch(ctx, next, { stale, token: undefined, revalidate, background: false })).response
    }
    return await this.#lead(ctx, next, stale, revalidate)
  }

  /** Runs the fill for a key, letting concurrent requests of this instance join it. */
  async #lead (ctx: Ctx, next: Handler, stale: Entry | undefined, revalidate: boolean): Promise<GatewayResponse> {
    const flights = this.#rt.flights
    let settle!: (o: FlightOutcome) => void
    const flight = new Promise<FlightOutcome>(resolve => { settle = resolve })
    flights.set(ctx.id, flight)
    let outcome = PASS
    try {
      const a = await this.#fill(ctx, next, stale, revalidate)
      outcome = a.outcome
      return a.response
    } finally {
      if (flights.get(ctx.id) === flight) flights.delete(ctx.id)
      settle(outcome)
    }
  }

  async #fill (ctx: Ctx, next: Handler, staleIn: Entry | undefined, revalidate: boolean): Promise<Answer> {
    const redis = this.#rt.redis
    let stale = staleIn
    let token: string | undefined
    if (redis !== undefined && redis.available && !revalidate) {
      const candidate = randomUUID()
      const deadline = now() + this.#s.lockMs
      let waited = false
      for (;;) {
        let r: LookupResult
        try {
          r = await redis.lookup(ctx.id, candidate, this.#s.lockMs)
        } catch (err) {
          redis.failed(err, 'lookup')
          break
        }
        if (r.state === 'fresh') {
          this.#memory?.set(r.entry)
          const st: CacheStatus = waited ? { fwd: 'miss', collapsed: true } : { hit: true, detail: 'redis' }
          const o: Outcome = waited ? 'collapsed' : 'hit'
          return { response: this.#serve(r.entry, st, o), outcome: { kind: 'entry', entry: r.entry, status: st, outcome: o } }
        }
        if (r.state === 'stale') {
          const at = now()
          if (freshness(r.entry, at) === 'stale-while-revalidate') {
            this.#memory?.set(r.entry)
            // Whoever took the lease refreshes it; everyone else keeps serving the stale entry meanwhile.
            if (r.lease === 1) this.#refresh(ctx, next, candidate)
            const st: CacheStatus = { hit: true, detail: 'stale-while-revalidate' }
            return { response: this.#serve(r.entry, st, 'stale', at), outcome: { kind: 'entry', entry: r.entry, status: st, outcome: 'stale' } }
          }
          if (usableIfError(r.entry, at) && (stale === undefined || r.entry.storedAt > stale.storedAt)) stale = r.entry
        }
        if (r.lease === 1) { token = candidate; break }
        if (r.lease !== 0) break
        // Another instance is filling the entry: wait for its notification, at most lockMs in all.
        const left = deadline - now()
        if (left <= 0) break
        waited = true
        if (await redis.waitFill(ctx.id, Math.min(left, RECHECK_MS)) === 'released') break
      }
    }
    return await this.#fetch(ctx, next, { stale, token, revalidate, background: false })
  }

  /** Asks upstream, stores the answer when it may be stored, or serves a stale entry when upstream fails. */
  async #fetch (ctx: Ctx, next: Handler, o: FetchOptions): Promise<Answer> {
    const rt = this.#rt
    const s = this.#s
    const fwd: CacheStatus['fwd'] = o.revalidate ? 'request' : o.stale !== undefined ? 'stale' : 'miss'
    const generation = rt.generation
    const up = this.#upstreamRequest(ctx, o.background)
    const miss = (a: Answer): Answer => { if (!o.background) this.#counts.miss++; return a }
    let res: GatewayResponse
    try {
      res = await next(up)
    } catch (err) {
      this.#release(ctx.id, o.token)
      if (usableIfError(o.stale)) return this.#staleIfError(o.stale, isGatewayError(err) ? err.statusCode : 500)
      throw err
    }
    if (res.status >= 500 && usableIfError(o.stale)) {
      discard(res.body)
      this.#release(ctx.id, o.token)
      return this.#staleIfError(o.stale, res.status)
    }
    const d: StoreDecision = up.method === 'HEAD'
      ? { store: false, reason: 'head' }
      : storeDecision(res, s, { authorization: ctx.authorization, noStore: ctx.noStore })
    const tags = d.store ? responseTags(res.headers, s.tags) : []
    stripTagHeaders(res.headers)
    if (!d.store) return miss(this.#notStored(ctx, res, o.token, { fwd, fwdStatus: res.status, detail: d.reason }))

    let bytes: Buffer
    try {
      const b = await bufferBody(res.body, s.maxSize)
      if (b.tooBig !== undefined) {
        res.body = b.tooBig
        return miss(this.#notStored(ctx, res, o.token, { fwd, fwdStatus: res.status, detail: 'too-big' }))
      }
      bytes = b.bytes
    } catch (err) {
      this.#release(ctx.id, o.token)
      if (usableIfError(o.stale)) return this.#staleIfError(o.stale, 502)
      throw new GatewayError('GW_ERR_UPSTREAM_BAD_RESPONSE', { cause: err })
    }
    res.body = bytes
    // An invalidation arrived while this was fetched: the answer may predate it, so it is not kept.
    if (generation !== rt.generation) return miss(this.#notStored(ctx, res, o.token, { fwd, fwdStatus: res.status, detail: 'invalidated' }))

    const headers: Record<string, string | string[]> = {}
    for (const [k, v] of Object.entries(res.headers)) if (!NOT_STORED.has(k)) headers[k] = v
    const entry: Entry = { id: ctx.id, status: res.status, headers, body: bytes, storedAt: now(), ttlMs: d.ttlMs, swrMs: d.swrMs, sieMs: d.sieMs, tags }
    this.#memory?.set(entry)
    let inRedis = false
    const redis = rt.redis
    if (redis !== undefined && redis.available) {
      try {
        await redis.store(entry, o.token)
        inRedis = true
      } catch (err) {
        redis.failed(err, 'store')
        this.#release(ctx.id, o.token)
      }
    }
    const stored = inRedis || this.#memory !== undefined
    if (stored) rt.stored()
    const st: CacheStatus = { fwd, fwdStatus: res.status, stored, ttlS: ttlSeconds(entry), key: ctx.id }
    if (redis !== undefined && !inRedis) st.detail = 'redis-unavailable'
    if (!stored) return miss({ response: this.#withStatus(res, st), outcome: PASS })
    const follower: CacheStatus = { fwd: 'miss', collapsed: true }
    return miss({ response: responseOf(entry, formatCacheStatus(st), false), outcome: { kind: 'entry', entry, status: follower, outcome: 'collapsed' } })
  }

  #notStored (ctx: Ctx, res: GatewayResponse, token: string | undefined, st: CacheStatus): Answer {
    this.#release(ctx.id, token)
    return { response: this.#withStatus(res, st, ctx.id), outcome: PASS }
  }

  #withStatus (res: GatewayResponse, st: CacheStatus, key?: string): GatewayResponse {
    appendCacheStatus(res.headers, formatCacheStatus(st, st.ttlS, key ?? st.key))
    return res
  }

  #staleIfError (e: Entry, fwdStatus: number): Answer {
    const st: CacheStatus = { fwd: 'stale', fwdStatus, detail: 'stale-if-error' }
    return { response: this.#serve(e, st, 'stale-if-error'), outcome: { kind: 'entry', entry: e, status: st, outcome: 'stale-if-error' } }
  }

  /** An answer from a stored entry, with `Age` and Cache-Status. */
  #serve (e: Entry, st: CacheStatus, outcome: Outcome, at = now()): GatewayResponse {
    this.#counts[outcome]++
    const ttlS = ttlSeconds(e, at)
    // The Cache-Status of a plain hit changes once a second (its ttl): formatted once per entry and second.
    if (st.hit === true && st.fwd === undefined && st.detail === 'memory') {
      const memo = hitStatus.get(e)
      if (memo !== undefined && memo.ttlS === ttlS) return responseOf(e, memo.value, true, at)
      const value = formatCacheStatus(st, ttlS, e.id)
      hitStatus.set(e, { ttlS, value })
      return responseOf(e, value, true, at)
    }
    return responseOf(e, formatCacheStatus(st, ttlS, e.id), true, at)
  }

  /** Not cacheable here: passes through, without the tag headers, with Cache-Status. */
  async #bypass (greq: GatewayRequest, next: Handler, st: CacheStatus): Promise<GatewayResponse> {
    this.#counts.bypass++
    const res = await next(greq)
    stripTagHeaders(res.headers)
    return this.#withStatus(res, st)
  }

  /** Gives back a fill lease (in the background): waiters on other instances then ask upstream themselves. */
  #release (id: string, token: string | undefined): void {
    const redis = this.#rt.redis
    if (token === undefined || redis === undefined) return
    this.#rt.track(redis.release(id, token).catch((err: unknown) => redis.failed(err, 'lease release')))
  }

  /**
   * One background refresh per key and instance (stale-while-revalidate); with
   * Redis, only the instance holding the lease refreshes.
   */
  #refresh (ctx: Ctx, next: Handler, token: string | undefined): void {
    const rt = this.#rt
    if (rt.refreshing.has(ctx.id)) { this.#release(ctx.id, token); return }
    rt.refreshing.add(ctx.id)
    let tok = token
    const run = async (): Promise<void> => {
      const redis = rt.redis
      if (tok === undefined && redis !== undefined && redis.available) {
        const candidate = randomUUID()
        const r = await redis.lookup(ctx.id, candidate, this.#s.lockMs)
        // Another instance refreshed it already, or is refreshing it now.
        if (r.state === 'fresh') { this.#memory?.set(r.entry); return }
        if (r.lease !== 1) return
        tok = candidate
      }
      rt.refreshed()
      const a = await this.#fetch(ctx, next, { stale: undefined, token: tok, revalidate: false, background: true })
      discard(a.response.body)
    }
    rt.track(run().catch((err: unknown) => {
      this.#release(ctx.id, tok)
      rt.log.debug({ err, key: ctx.id }, 'cache: background refresh failed; the stale entry stays')
    }).finally(() => rt.refreshing.delete(ctx.id)))
  }

  /**
   * The request sent upstream: HEAD becomes GET on a GET route (so the entry
   * can be filled); a background refresh is not tied to the client's connection.
   */
  #upstreamRequest (ctx: Ctx, background: boolean): GatewayRequest {
    const g = ctx.greq
    const method = g.method === 'HEAD' && this.#o.method !== 'HEAD' ? 'GET' : g.method
    if (method === g.method && !background) return g
    const copy: GatewayRequest = { ...g, method }
    if (background) {
      (copy as { signal: AbortSignal }).signal = new AbortController().signal
      copy.body = ctx.body === undefined ? { kind: 'none' } : bodyStream(ctx.body)
    }
    return copy
  }

  /** Reads the body of a cached method that carries one (it is in the key), and puts it back as a stream. */
  async #keyBody (greq: GatewayRequest): Promise<Buffer | undefined> {
    if (BODYLESS.has(greq.method)) return undefined
    const b = greq.body
    if (b.kind === 'none') return Buffer.alloc(0)
    if (b.kind === 'buffer') return b.bytes
    if (b.length !== undefined && b.length > this.#o.bodyLimit) throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: this.#o.bodyLimit } })
    const bytes = await readBody(b.stream, this.#o.bodyLimit)
    // A stream, not a buffer: the streaming path forwards only a streamed body.
    greq.body = bodyStream(bytes)
    return bytes
  }
}

function bodyStream (bytes: Buffer): GatewayRequest['body'] {
  return { kind: 'stream', stream: Readable.from([bytes], { objectMode: false }), length: bytes.length }
}

/**
 * Reads a response body into memory up to `max` bytes. Past it, gives back a
 * stream of what was read followed by the rest, for the client, unstored.
 */
export async function bufferBody (body: GatewayResponse['body'], max: number): Promise<{ bytes: Buffer, tooBig?: undefined } | { tooBig: Readable }> {
  if (body === undefined) return { bytes: Buffer.alloc(0) }
  if (Buffer.isBuffer(body)) return body.length > max ? { tooBig: Readable.from([body], { objectMode: false }) } : { bytes: body }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    chunks.push(chunk)
    size += chunk.length
    if (size > max) {
      const rest = body
      return {
        tooBig: Readable.from((async function * () {
          yield * chunks
          for await (const c of rest as AsyncIterable<Buffer>) yield c
        })(), { objectMode: false })
      }
    }
  }
  return { bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }
}
