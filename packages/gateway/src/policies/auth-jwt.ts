/**
 * JWT authentication (PRODUCT §4.1). The token is verified with jose against a
 * static key or a remote JWKS, with an algorithm allow-list derived from the
 * key (never `none`, never HS* with a public key), then `iss`, `aud`, `exp`,
 * `nbf` with a clock tolerance. The verified claims become `greq.claims`,
 * which HTTP services receive as `x-switchyard-claims` and Redis services as
 * `auth`.
 *
 * Where it applies, most specific first: the route's services (when every
 * service of the route sets the same `authentication`), the route, then
 * `http.authentication`. `"none"` at any level turns a wider one off.
 *
 * Refusals (RFC 6750 §3): no token → 401 GW_ERR_AUTH_MISSING; a bad token →
 * 401 GW_ERR_AUTH_INVALID; both with `WWW-Authenticate: Bearer`. A `verify`
 * hook saying no → 403 GW_ERR_AUTH_FORBIDDEN; a hook that throws → 500
 * GW_ERR_HOOK_FAILED. Prism's `errorStatus`/`errorBody` replace the status and
 * body of refusals.
 */
import { Readable } from 'node:stream'
import { GatewayError, errorCatalogue, type HttpRequest } from '@switchyard/protocol'
import { errors } from 'jose'
import type { GatewayConfig } from '../config/types.js'
import { configInvalid, formatPath } from '../config/validate.js'
import { ensureBuffered, parseQuery, parseRequestBody } from '../pipeline/body.js'
import { fireHook, runHook } from '../pipeline/hooks.js'
import { errorResponse } from '../pipeline/respond.js'
import type { GatewayRequest, GatewayResponse } from '../pipeline/types.js'
import { normalizeAuth, type Issue, type NormalizedAuth } from './jwt/options.js'
import { fromAuthorization, fromBody, fromCookie, fromHeader, looksLikeJwt } from './jwt/token.js'
import { createVerifier, KeySetUnavailable, refusalReason, type Verifier } from './jwt/verifier.js'
import { settle, transparent, type DirectHandler, type Handler, type Policy, type PolicyDeps, type RouteTarget } from './types.js'

export type { AuthJwtOptions, AuthenticationConfig, PrismVerifyOptions } from './jwt/options.js'

/** Config keys this module implements; start refuses a key no module implements. */
export const keys: readonly string[] = ['authentication']

const DEFAULT_BODY_LIMIT = 1024 * 1024

interface Compiled {
  readonly auth: NormalizedAuth
  readonly verifier: Verifier
}

/** One compiled policy per config object and gateway: routes sharing `http.authentication` share its JWKS cache. */
const compiledByGateway = new WeakMap<PolicyDeps, Map<unknown, Compiled>>()

/** `GW_ERR_CONFIG_INVALID` listing each issue with its path, as config validation does. */
function configError (issues: readonly Issue[]): GatewayError {
  return configInvalid(issues.map(i => ({ path: formatPath(i.path), message: i.message })))
}

interface Chosen { value: unknown, path: readonly string[] }

/** The `authentication` that applies to a route: its services', its own, or the global one. */
function chooseAuthentication (target: RouteTarget, config: GatewayConfig): Chosen | undefined {
  const base = ['http', 'routes', target.path, target.method]
  const services = Object.entries(target.route.services) as Array<[string, { authentication?: unknown }]>
  const set = services.filter(([, s]) => s.authentication !== undefined)
  if (set.length > 0) {
    const [firstName, first] = set[0]!
    // The request is authenticated once, before any service is called, so services of
    // one route cannot ask for different things.
    const odd = services.find(([, s]) => s.authentication !== first.authentication)
    if (odd !== undefined) {
      throw configError([{
        path: [...base, 'services', odd[0], 'authentication'],
        message: 'every service of a route must set the same `authentication` (the same object, or "none"), because the token is checked once before any service is called; set `authentication` on the route instead'
      }])
    }
    return { value: first.authentication, path: [...base, 'services', firstName, 'authentication'] }
  }
  const own = (target.route as { authentication?: unknown }).authentication
  if (own !== undefined) return { value: own, path: [...base, 'authentication'] }
  const global = (config.http as { authentication?: unknown } | undefined)?.authentication
  if (global !== undefined) return { value: global, path: ['http', 'authentication'] }
  return undefined
}

function compile (chosen: Chosen, deps: PolicyDeps): Compiled {
  let cache = compiledByGateway.get(deps)
  if (cache === undefined) compiledByGateway.set(deps, cache = new Map())
  const hit = cache.get(chosen.value)
  if (hit !== undefined) return hit
  const issues: Issue[] = []
  const auth = normalizeAuth(chosen.value, chosen.path, issues)
  if (auth === undefined) throw configError(issues)
  for (const w of auth.warnings) deps.log.warn({ path: formatPath(chosen.path) }, `authentication: ${w}`)
  const compiled = { auth, verifier: createVerifier(auth) }
  cache.set(chosen.value, compiled)
  return compiled
}

/** The Prism-style request hooks receive. The body is there only when `jwtBodyField` had it read. */
function requestView (greq: GatewayRequest, body: unknown): HttpRequest {
  const view: HttpRequest = {
    path: greq.path,
    method: greq.method,
    params: { ...greq.params },
    query: parseQuery(greq.rawQuery),
    headers: { ...greq.headers },
    remoteAddress: greq.remoteAddress,
    remotePort: greq.remotePort
  }
  if (body !== undefined) view.body = body
  return view
}

/** The request view hooks see, made on first use; with the body once `jwtBodyField` had it read. */
class LazyView {
  readonly #greq: GatewayRequest
  #view: HttpRequest | undefined
  body: unknown

  constructor (greq: GatewayRequest) {
    this.#greq = greq
    this.#view = undefined
    this.body = undefined
  }

  withBody (body: unknown): void {
    this.body = body
    this.#view = undefined // rebuilt with the body
  }

  get (): HttpRequest {
    this.#view ??= requestView(this.#greq, this.body)
    return this.#view
  }
}

/** Reads and parses the body for `jwtBodyField`, leaving it readable for whatever runs next. */
async function readBodyFor (greq: GatewayRequest, limit: number): Promise<unknown> {
  const b = greq.body
  if (b.kind === 'none') return undefined
  let bytes: Buffer
  if (b.kind === 'buffer') bytes = b.bytes
  else {
    await ensureBuffered(greq, limit)
    bytes = (greq.body as { bytes: Buffer }).bytes
    // The streaming path (pipeline/stream.ts) forwards only a stream body: hand the bytes back as one.
    greq.body = { kind: 'stream', stream: Readable.from([bytes], { objectMode: false }), length: b.length }
  }
  return parseRequestBody(bytes, greq.headers['content-type'])
}

/** `error_description` is a quoted-string limited to printable ASCII without `"` and `\` (RFC 6750 §3). */
function quotable (s: string): string {
  return s.replace(/"/g, '\'').replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '')
}

type Refusal = 'missing' | 'invalid' | 'forbidden'

const REFUSAL_CODE = { missing: 'GW_ERR_AUTH_MISSING', invalid: 'GW_ERR_AUTH_INVALID', forbidden: 'GW_ERR_AUTH_FORBIDDEN' } as const

/**
 * The authentication policy for a route, or undefined when none applies.
 * Throws GW_ERR_CONFIG_INVALID at start for bad options.
 * @example
 * http: { authentication: { type: 'jwt', key: process.env.JWT_SECRET, issuer: 'https://auth.example' }, routes: { ... } }
 */
export function authJwt (target: RouteTarget, deps: PolicyDeps): Policy | undefined {
  const chosen = chooseAuthentication(target, deps.config)
  if (chosen === undefined || chosen.value === 'none') return undefined
  if (typeof chosen.value === 'string') throw configError([{ path: chosen.path, message: 'expected an object (the JWT options) or "none"' }])
  const { auth, verifier } = compile(chosen, deps)
  const bodyLimit = target.route.bodyLimitBytes ?? deps.config.server?.bodyLimitBytes ?? DEFAULT_BODY_LIMIT
  const explicitSource = auth.getJwt !== undefined || auth.jwtHeaderField !== undefined || auth.cookie !== undefined || auth.jwtBodyField !== undefined
  const realm = `realm="${auth.realm}"`

  function refuse (greq: GatewayRequest, kind: Refusal, reason: string | undefined, view: LazyView, cause?: unknown): GatewayResponse {
    const code = REFUSAL_CODE[kind]
    const catalogue = errorCatalogue[code].message
    const err = new GatewayError(code, { message: reason === undefined ? catalogue : `${catalogue}: ${reason}`, cause })
    greq.log.debug({ reqId: greq.id, code, reason }, 'authentication refused')
    const onError = auth.onError
    if (onError !== undefined) fireHook('authentication.onError', greq, () => onError(err, view.get()))
    const challenge = kind === 'missing'
      ? `Bearer ${realm}`
      : kind === 'invalid'
        ? `Bearer ${realm}, error="invalid_token", error_description="${quotable(reason ?? catalogue)}"`
        : `Bearer ${realm}, error="insufficient_scope"`
    const res = errorResponse(err, greq.id, { 'www-authenticate': challenge })
    if (auth.errorStatus !== undefined) res.status = auth.errorStatus
    const body = auth.errorBody
    if (body !== undefined) {
      const text = typeof body === 'string'
      res.body = Buffer.isBuffer(body) ? body : Buffer.from(text ? body : JSON.stringify(body))
      if (text) res.headers['content-type'] = 'text/plain; charset=utf-8'
      else if (Buffer.isBuffer(body)) res.headers['content-type'] = 'application/octet-stream'
    }
    return res
  }

  // With no hook and no body field, the token is in the headers and a known one needs
  // nothing asynchronous: answered without a promise and an `await` of this policy's own.
  const headersOnly = auth.getJwt === undefined && auth.jwtBodyField === undefined && auth.verify === undefined
  /** The token from `jwtHeaderField`, `cookie`, then Authorization unless a source is explicit. */
  const headerToken = (greq: GatewayRequest): string | undefined => {
    let token: string | undefined
    if (auth.jwtHeaderField !== undefined) token = fromHeader(greq.headers, auth.jwtHeaderField)
    if (token === undefined && auth.cookie !== undefined) token = fromCookie(greq.headers, auth.cookie)
    if (token === undefined && !explicitSource) token = fromAuthorization(greq.headers)
    return token
  }

  function authJwtPolicy (next: Handler): Handler {
    if (!headersOnly) return authenticate
    return function authenticateKnown (greq: GatewayRequest): Promise<GatewayResponse> {
      const token = headerToken(greq)
      const claims = token === undefined ? undefined : verifier.known(token)
      if (claims === undefined) return authenticate(greq) // missing, unknown or refused: the full path
      greq.claims = claims as Record<string, unknown>
      return next(greq)
    }

    async function authenticate (greq: GatewayRequest): Promise<GatewayResponse> {
      // Built only if a hook or a refusal needs it (a class, not a named closure per request).
      const view = new LazyView(greq)
      let token: string | undefined
      if (auth.getJwt !== undefined) {
        const getJwt = auth.getJwt
        const t = await runHook('authentication.getJwt', greq, () => getJwt(view.get()))
        token = typeof t === 'string' && t.trim() !== '' ? t.trim() : undefined
      }
      // A body field makes the source explicit: headerToken then leaves Authorization out.
      if (token === undefined) token = headerToken(greq)
      if (token === undefined && auth.jwtBodyField !== undefined) {
        view.withBody(await readBodyFor(greq, bodyLimit))
        token = fromBody(view.body, auth.jwtBodyField)
      }
      if (token === undefined) return refuse(greq, 'missing', undefined, view)

      // A token verified before is answered synchronously (only verified tokens are known).
      let claims = verifier.known(token)
      if (claims === undefined) {
        if (!looksLikeJwt(token)) return refuse(greq, 'invalid', 'the token is malformed', view)
        try {
          claims = await verifier.verify(token)
        } catch (err) {
          if (err instanceof KeySetUnavailable) {
            greq.log.warn({ reqId: greq.id, err: err.cause }, 'authentication: the JWKS could not be fetched')
            throw new GatewayError('GW_ERR_AUTH_JWKS_UNAVAILABLE', { cause: err })
          }
          // Not a JOSE error: a key that does not fit the algorithm, most likely a config problem.
          if (!(err instanceof errors.JOSEError)) greq.log.warn({ reqId: greq.id, err }, 'authentication: verification failed unexpectedly')
          return refuse(greq, 'invalid', refusalReason(err), view, err)
        }
      }
      if (auth.verify !== undefined) {
        const hook = auth.verify
        const allowed = await runHook('authentication.verify', greq, () => hook(claims, view.get()))
        if (!allowed) return refuse(greq, 'forbidden', undefined, view)
      }
      greq.claims = claims as Record<string, unknown>
      return await next(greq)
    }
  }

  // The callback form: a known token goes on to `next` at once; anything else takes the promise path around `rest`.
  return transparent(authJwtPolicy, !headersOnly
    ? undefined
    : function authJwtDirect (next: DirectHandler, rest: Handler): DirectHandler {
      const full = authJwtPolicy(rest)
      return function authenticateKnownDirect (greq, done, fail) {
        let claims: unknown
        try {
          const token = headerToken(greq)
          claims = token === undefined ? undefined : verifier.known(token)
        } catch (err) {
          fail(err, greq)
          return
        }
        if (claims === undefined) {
          settle(full(greq), greq, done, fail) // missing, unknown or refused: the full path
          return
        }
        greq.claims = claims as Record<string, unknown>
        next(greq, done, fail)
      }
    })
}
