/**
 * The `authentication` options (Prism's shape plus Switchyard's keys), checked
 * once at start: every problem is reported with its config path, and what
 * passes is normalized into what the policy runs with.
 */
import type { HttpRequest } from '@switchyard/protocol'
import type { JWTPayload, JWTVerifyOptions } from 'jose'
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, KNOWN_ALGORITHMS, verificationKey, type VerificationKey } from './keys.js'

/** Prism's `verifyOptions` (jsonwebtoken's names; clock values in seconds). */
export interface PrismVerifyOptions {
  algorithms?: string[]
  audience?: string | string[]
  issuer?: string | string[]
  subject?: string
  /** Seconds of clock skew allowed for `exp`, `nbf` and `iat`. */
  clockTolerance?: number
  /** Oldest accepted token by its `iat`: seconds, or a span such as `"2h"`. */
  maxAge?: number | string
  jwtid?: string
  nonce?: string
  /** Accepted for Prism compatibility; has no effect (services get the payload). */
  complete?: boolean
}

/**
 * JWT authentication of a route (PRODUCT §4.1). `key` or `jwksUrl` is required.
 * @example
 * authentication: { type: 'jwt', key: readFileSync('idp-public.pem'), issuer: 'https://idp.example', audience: 'shop' }
 */
export interface AuthJwtOptions {
  /** Prism's discriminator; only `"jwt"` exists. @default "jwt" */
  type?: 'jwt'
  /** HMAC secret (string or bytes), public key PEM (string or Buffer), KeyObject, CryptoKey or JWK. */
  key?: unknown
  /** A JSON Web Key Set URL; keys are cached and refetched when a token names an unknown `kid`. */
  jwksUrl?: string
  /** Accepted algorithms; a subset of what the key can verify. @default derived from the key */
  algorithms?: string[]
  issuer?: string | string[]
  audience?: string | string[]
  subject?: string
  /** Seconds of clock skew allowed for `exp`, `nbf` and `iat`. @default 0 */
  clockToleranceSec?: number
  /** Oldest accepted token by its `iat`, in seconds. @default no limit */
  maxTokenAgeSec?: number
  /** Claims that must be present. @default [] */
  requiredClaims?: string[]
  /** Read the token from this request header (a `Bearer ` prefix is stripped). */
  jwtHeaderField?: string
  /** Read the token from this cookie. */
  cookie?: string
  /** Read the token from this field of a JSON or form body (the body is read for it). */
  jwtBodyField?: string
  /** Returns the token for a request (Prism). */
  getJwt?: (request: HttpRequest) => string | undefined | null | Promise<string | undefined | null>
  /** Decides, after the signature and claims are verified, whether the caller may use the route; false → 403. */
  verify?: (claims: JWTPayload, request: HttpRequest) => boolean | Promise<boolean>
  /** Called (not awaited) with each refusal's reason. */
  onError?: (error: unknown, request: HttpRequest) => unknown
  /** Status for refusals (missing, invalid, forbidden) instead of 401/403. */
  errorStatus?: number
  /** Body for refusals instead of the JSON error: a string is sent as text/plain, anything else as JSON. */
  errorBody?: unknown
  /** The realm in `WWW-Authenticate`. @default "switchyard" */
  realm?: string
  /** JWKS: no refetch for an unknown `kid` sooner than this after the last fetch. @default 30000 */
  jwksCooldownMs?: number
  /** JWKS: keys are refetched when older than this. @default 600000 */
  jwksCacheMaxAgeMs?: number
  /** JWKS: fetch timeout. @default 5000 */
  jwksTimeoutMs?: number
  /** Prism's jsonwebtoken options; the flat keys above say the same. */
  verifyOptions?: PrismVerifyOptions
}

/** What a route's `authentication` may be: options, or `"none"` to turn a wider one off. */
export type AuthenticationConfig = AuthJwtOptions | 'none'

export const DEFAULT_REALM = 'switchyard'
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000
export const DEFAULT_JWKS_CACHE_MAX_AGE_MS = 600_000
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000

export interface Issue { path: readonly string[], message: string }

/** The options, checked and normalized. */
export interface NormalizedAuth {
  readonly source: { kind: 'key', key: VerificationKey } | { kind: 'jwks', url: URL, cooldownMs: number, cacheMaxAgeMs: number, timeoutMs: number }
  readonly verifyOptions: JWTVerifyOptions & { algorithms: string[] }
  readonly jwtid: string | undefined
  readonly nonce: string | undefined
  readonly jwtHeaderField: string | undefined
  readonly cookie: string | undefined
  readonly jwtBodyField: string | undefined
  readonly getJwt: AuthJwtOptions['getJwt']
  readonly verify: AuthJwtOptions['verify']
  readonly onError: AuthJwtOptions['onError']
  readonly errorStatus: number | undefined
  readonly errorBody: unknown
  readonly realm: string
  readonly warnings: readonly string[]
}

const TOP_KEYS = new Set(['type', 'key', 'jwksUrl', 'algorithms', 'issuer', 'audience', 'subject', 'clockToleranceSec', 'maxTokenAgeSec', 'requiredClaims',
  'jwtHeaderField', 'cookie', 'jwtBodyField', 'getJwt', 'verify', 'onError', 'errorStatus', 'errorBody', 'realm',
  'jwksCooldownMs', 'jwksCacheMaxAgeMs', 'jwksTimeoutMs', 'verifyOptions'])
const VERIFY_KEYS = new Set(['algorithms', 'audience', 'issuer', 'subject', 'clockTolerance', 'maxAge', 'jwtid', 'nonce', 'complete'])
const HINTS: Record<string, string> = {
  jwtField: 'unknown key; Prism read `jwtHeaderField` (its docs said `jwtField`)',
  error: 'unknown key; use `errorStatus` and `errorBody`',
  secret: 'unknown key; put the secret in `key`',
  publicKey: 'unknown key; put the PEM in `key`',
  jwks: 'unknown key; use `jwksUrl`',
  jwksUri: 'unknown key; use `jwksUrl`',
  clockTolerance: 'unknown key; use `clockToleranceSec` (or `verifyOptions.clockTolerance`)'
}
const REFUSED_VERIFY: Record<string, string> = {
  ignoreExpiration: 'not supported: Switchyard always checks `exp`; raise `clockToleranceSec` instead',
  ignoreNotBefore: 'not supported: Switchyard always checks `nbf`; raise `clockToleranceSec` instead',
  clockTimestamp: 'not supported: tokens are checked against the current time'
}
/** jose's span syntax (`"2h"`, `"7 days"`), as jsonwebtoken's `maxAge` strings mostly are. */
const SPAN = /^(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)$/i
/** RFC 7230 token characters: header and cookie names. */
const TOKEN_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** RFC 6750 error_description / realm characters, minus `"` and `\`. */
const QUOTABLE = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function stringOrList (v: unknown): v is string | string[] {
  return (typeof v === 'string' && v !== '') || (Array.isArray(v) && v.length > 0 && v.every(s => typeof s === 'string' && s !== ''))
}

/** Checks `raw` (found at `path`) and normalizes it; `issues` collects every problem. */
export function normalizeAuth (raw: unknown, path: readonly string[], issues: Issue[]): NormalizedAuth | undefined {
  const before = issues.length
  const at = (key: string, message: string, ...more: string[]): void => { issues.push({ path: [...path, key, ...more], message }) }
  if (!isObject(raw)) {
    issues.push({ path, message: 'expected an object with `key` or `jwksUrl`, or "none"' })
    return undefined
  }
  for (const k of Object.keys(raw)) if (!TOP_KEYS.has(k) && raw[k] !== undefined) at(k, HINTS[k] ?? 'unknown key')
  if (raw.type !== undefined && raw.type !== 'jwt') at('type', 'expected "jwt" (the only authentication type)')

  const vo = raw.verifyOptions
  const v: Record<string, unknown> = isObject(vo) ? vo : {}
  if (vo !== undefined && !isObject(vo)) at('verifyOptions', 'expected an object')
  for (const k of Object.keys(v)) {
    if (v[k] === undefined) continue
    if (REFUSED_VERIFY[k] !== undefined) at('verifyOptions', REFUSED_VERIFY[k], k)
    else if (!VERIFY_KEYS.has(k)) at('verifyOptions', 'unknown key', k)
  }
  /** One setting given flat or in verifyOptions, never both with different values. */
  const either = (flat: string, prism: string): [unknown, string[]] => {
    const a = raw[flat]
    const b = v[prism]
    if (a !== undefined && b !== undefined && JSON.stringify(a) !== JSON.stringify(b)) at(flat, `conflicts with verifyOptions.${prism}; set it once`)
    return a !== undefined ? [a, [flat]] : [b, ['verifyOptions', prism]]
  }
  const pathOf = (p: string[]): string[] => [...path, ...p]

  // Where the keys come from.
  let source: NormalizedAuth['source'] | undefined
  const warnings: string[] = []
  if (raw.key !== undefined && raw.jwksUrl !== undefined) at('jwksUrl', 'give `key` or `jwksUrl`, not both')
  else if (raw.key === undefined && raw.jwksUrl === undefined) issues.push({ path: [...path, 'key'], message: 'required (or `jwksUrl`)' })
  else if (raw.key !== undefined) {
    const r = verificationKey(raw.key)
    if ('error' in r) at('key', r.error)
    else { source = { kind: 'key', key: r.ok }; warnings.push(...r.ok.warnings) }
  } else {
    let url: URL | undefined
    try { url = typeof raw.jwksUrl === 'string' ? new URL(raw.jwksUrl) : undefined } catch {}
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) at('jwksUrl', 'expected an http(s) URL')
    else {
      if (url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) warnings.push('the JWKS URL is plain http; anyone on the path can swap the keys')
      const ms = (k: string, d: number): number => {
        const x = raw[k]
        if (x === undefined) return d
        if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) { at(k, 'expected milliseconds (a number ≥ 0)'); return d }
        return x
      }
      source = {
        kind: 'jwks',
        url,
        cooldownMs: ms('jwksCooldownMs', DEFAULT_JWKS_COOLDOWN_MS),
        cacheMaxAgeMs: ms('jwksCacheMaxAgeMs', DEFAULT_JWKS_CACHE_MAX_AGE_MS),
        timeoutMs: ms('jwksTimeoutMs', DEFAULT_JWKS_TIMEOUT_MS)
      }
    }
  }
  if (source?.kind !== 'jwks') for (const k of ['jwksCooldownMs', 'jwksCacheMaxAgeMs', 'jwksTimeoutMs']) if (raw[k] !== undefined && raw.key !== undefined) at(k, 'only with `jwksUrl`')

  // Algorithms: a subset of what the key can verify; never `none`.
  const possible = source === undefined ? undefined : source.kind === 'key' ? source.key.algorithms : ASYMMETRIC_ALGORITHMS
  const [algs, algPath] = either('algorithms', 'algorithms')
  let algorithms: string[] = [...(possible ?? [])]
  if (algs !== undefined) {
    if (!Array.isArray(algs) || algs.length === 0 || !algs.every(a => typeof a === 'string')) issues.push({ path: pathOf(algPath), message: 'expected a non-empty list of algorithm names' })
    else {
      algs.forEach((a: string, i) => {
        const p = pathOf([...algPath, String(i)])
        if (a.toLowerCase() === 'none') issues.push({ path: p, message: '"none" is never accepted: an unsigned token proves nothing' })
        else if (!KNOWN_ALGORITHMS.has(a)) issues.push({ path: p, message: `unknown algorithm; expected one of ${[...KNOWN_ALGORITHMS].join(', ')}` })
        else if (possible !== undefined && !possible.includes(a)) {
          const why = source?.kind === 'jwks'
            ? 'a JWKS holds public keys; HS* needs a shared secret in `key`'
            : (HMAC_ALGORITHMS as readonly string[]).includes(a)
                ? 'HS* with a public key is the algorithm-confusion attack; use the key\'s own algorithms'
                : `this key verifies only ${possible.join(', ')}`
          issues.push({ path: p, message: `${a} cannot be used with this key: ${why}` })
        }
      })
      algorithms = [...new Set(algs as string[])]
    }
  }

  const verifyOptions: JWTVerifyOptions & { algorithms: string[] } = { algorithms }
  const [iss, issPath] = either('issuer', 'issuer')
  if (iss !== undefined) {
    if (!stringOrList(iss)) issues.push({ path: pathOf(issPath), message: 'expected a string or a list of strings' })
    else verifyOptions.issuer = iss
  }
  const [aud, audPath] = either('audience', 'audience')
  if (aud !== undefined) {
    if (!stringOrList(aud)) issues.push({ path: pathOf(audPath), message: 'expected a string or a list of strings (regular expressions are not supported)' })
    else verifyOptions.audience = aud
  }
  const [sub, subPath] = either('subject', 'subject')
  if (sub !== undefined) {
    if (typeof sub !== 'string' || sub === '') issues.push({ path: pathOf(subPath), message: 'expected a string' })
    else verifyOptions.subject = sub
  }
  const [tol, tolPath] = either('clockToleranceSec', 'clockTolerance')
  if (tol !== undefined) {
    if (typeof tol !== 'number' || !Number.isFinite(tol) || tol < 0) issues.push({ path: pathOf(tolPath), message: 'expected seconds (a number ≥ 0)' })
    else verifyOptions.clockTolerance = tol
  }
  const [age, agePath] = either('maxTokenAgeSec', 'maxAge')
  if (age !== undefined) {
    if (typeof age === 'number' && Number.isFinite(age) && age >= 0) verifyOptions.maxTokenAge = age
    else if (typeof age === 'string' && agePath[0] === 'verifyOptions' && SPAN.test(age.trim())) verifyOptions.maxTokenAge = age.trim()
    else issues.push({ path: pathOf(agePath), message: agePath[0] === 'verifyOptions' ? 'expected seconds, or a span such as "2h" or "7d"' : 'expected seconds (a number ≥ 0)' })
  }
  if (raw.requiredClaims !== undefined) {
    const rc = raw.requiredClaims
    if (!Array.isArray(rc) || !rc.every(c => typeof c === 'string' && c !== '')) at('requiredClaims', 'expected a list of claim names')
    else verifyOptions.requiredClaims = rc
  }
  const str = (o: Record<string, unknown>, k: string, p: string[]): string | undefined => {
    const x = o[k]
    if (x === undefined) return undefined
    if (typeof x !== 'string' || x === '') { issues.push({ path: pathOf(p), message: 'expected a non-empty string' }); return undefined }
    return x
  }
  const jwtid = str(v, 'jwtid', ['verifyOptions', 'jwtid'])
  const nonce = str(v, 'nonce', ['verifyOptions', 'nonce'])
  if (v.complete !== undefined && typeof v.complete !== 'boolean') at('verifyOptions', 'expected true or false', 'complete')

  // Where the token comes from.
  const jwtHeaderField = str(raw, 'jwtHeaderField', ['jwtHeaderField'])?.toLowerCase()
  if (jwtHeaderField !== undefined && !TOKEN_NAME.test(jwtHeaderField)) at('jwtHeaderField', 'expected a header name')
  const cookie = str(raw, 'cookie', ['cookie'])
  if (cookie !== undefined && !TOKEN_NAME.test(cookie)) at('cookie', 'expected a cookie name')
  const jwtBodyField = str(raw, 'jwtBodyField', ['jwtBodyField'])
  for (const k of ['getJwt', 'verify', 'onError'] as const) if (raw[k] !== undefined && typeof raw[k] !== 'function') at(k, 'expected a function')

  // How refusals look.
  let errorStatus: number | undefined
  if (raw.errorStatus !== undefined) {
    const s = raw.errorStatus
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 400 || s > 599) at('errorStatus', 'expected an HTTP error status (400–599)')
    else errorStatus = s
  }
  const realm = str(raw, 'realm', ['realm']) ?? DEFAULT_REALM
  if (!QUOTABLE.test(realm)) at('realm', 'expected printable ASCII without `"` or `\\`')

  if (issues.length > before) return undefined
  return {
    source: source!,
    verifyOptions,
    jwtid,
    nonce,
    jwtHeaderField,
    cookie,
    jwtBodyField,
    getJwt: raw.getJwt as AuthJwtOptions['getJwt'],
    verify: raw.verify as AuthJwtOptions['verify'],
    onError: raw.onError as AuthJwtOptions['onError'],
    errorStatus,
    errorBody: raw.errorBody,
    realm,
    warnings
  }
}
