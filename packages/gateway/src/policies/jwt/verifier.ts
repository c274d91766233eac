/**
 * Verifies a token with jose against a static key or a remote JWKS, and turns
 * every failure into a reason that is safe to show a client: fixed phrases,
 * never the token, never a payload value.
 */
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import { webcrypto } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { VerificationKey } from './keys.js'
import type { NormalizedAuth } from './options.js'

/** How long a verified token is taken as verified without checking its signature again. */
export const TOKEN_CACHE_MS = 60_000
const TOKEN_CACHE_ENTRIES = 10_000

/** The key set could not be fetched or read: the token may be fine, the gateway cannot tell. */
export class KeySetUnavailable extends Error {
  constructor (cause: unknown) {
    super('the JWKS could not be fetched', { cause })
    this.name = 'KeySetUnavailable'
  }
}

interface VerifiedToken {
  readonly token: string
  readonly payload: JWTPayload
  /** Until when (ms since the epoch) the token is taken as verified. */
  readonly until: number
}

export interface Verifier {
  /**
   * The payload of a token verified before and not yet due for another check,
   * synchronously; undefined otherwise. Lets the policy skip a promise and an
   * `await` for a client that sends the same token again.
   */
  known: (token: string) => JWTPayload | undefined
  /** Verifies a token (a known one at once). Rejects with a JOSE error, or KeySetUnavailable. */
  verify: (token: string) => Promise<JWTPayload>
}

export function createVerifier (auth: NormalizedAuth): Verifier {
  const src = auth.source
  let key: JWTVerifyGetKey
  if (src.kind === 'key') key = staticKey(src.key)
  else {
    // jose caches the set, refetches it when a token names an unknown kid (after the
    // cooldown) or when it is older than cacheMaxAge, and shares one fetch among callers.
    const remote = createRemoteJWKSet(src.url, { cooldownDuration: src.cooldownMs, cacheMaxAge: src.cacheMaxAgeMs, timeoutDuration: src.timeoutMs })
    key = async (header, token) => {
      try {
        return await remote(header, token)
      } catch (err) {
        // No matching key is the token's fault; anything else is the key set's.
        if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err
        throw new KeySetUnavailable(err)
      }
    }
  }
  const options = auth.verifyOptions
  const { jwtid, nonce } = auth
  // Tokens already verified, by their exact text: a signature check (WebCrypto, async) and
  // the claim checks cost ~60 µs, and a client sends the same token many times. An entry
  // lasts until the first of: the token's exp (with the clock tolerance), its maxTokenAge,
  // TOKEN_CACHE_MS. Only successes are kept. With a JWKS, a key removed from the set stops
  // verifying its tokens within TOKEN_CACHE_MS (jose itself refetches the set only after cacheMaxAge).
  const verified = new LRUCache<string, VerifiedToken>({ max: TOKEN_CACHE_ENTRIES })
  // The last token found, checked before the LRU: for a client that repeats its token,
  // comparing the text is cheaper than hashing it for the map lookup (each request's token
  // is a fresh string). It is an entry the LRU gave, with the same deadline; one the LRU
  // has since evicted is still good until that deadline, which is all an entry promises.
  let last: VerifiedToken | undefined
  const known = (token: string): JWTPayload | undefined => {
    const now = Date.now()
    if (last !== undefined && last.token === token && now < last.until) return last.payload
    const entry = verified.get(token)
    if (entry === undefined) return undefined
    if (now < entry.until) {
      last = entry
      return entry.payload
    }
    verified.delete(token)
    return undefined
  }
  return { known, verify: async (token) => known(token) ?? await verifyToken(token) }

  async function verifyToken (token: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, key, options)
    if (jwtid !== undefined && payload.jti !== jwtid) throw new errors.JWTClaimValidationFailed('unexpected "jti" claim value', payload, 'jti', 'check_failed')
    if (nonce !== undefined && payload.nonce !== nonce) throw new errors.JWTClaimValidationFailed('unexpected "nonce" claim value', payload, 'nonce', 'check_failed')
    const until = cacheDeadline(payload, options, Date.now())
    if (until > Date.now()) verified.set(token, { token, payload, until })
    return payload
  }
}

/** When a verified token must be checked again (ms since the epoch). */
export function cacheDeadline (payload: JWTPayload, options: JWTVerifyOptions, now: number): number {
  const tol = typeof options.clockTolerance === 'number' ? options.clockTolerance : 0
  let until = now + TOKEN_CACHE_MS
  if (typeof payload.exp === 'number') until = Math.min(until, (payload.exp + tol) * 1000)
  if (options.maxTokenAge !== undefined) {
    // A span such as "2h" is jose's to parse: such tokens are simply not kept.
    if (typeof options.maxTokenAge !== 'number' || typeof payload.iat !== 'number') return 0
    until = Math.min(until, (payload.iat + options.maxTokenAge + tol) * 1000)
  }
  return until
}

/**
 * The static key as a CryptoKey per algorithm, imported on first use: given the
 * KeyObject itself, jose imports it into WebCrypto again for every token.
 * jose checks the token's alg against the allowed list before asking for a key.
 */
function staticKey (vk: VerificationKey): JWTVerifyGetKey {
  const byAlg = new Map<string, Promise<webcrypto.CryptoKey>>()
  return async (header) => {
    const alg = header.alg ?? ''
    let k = byAlg.get(alg)
    if (k === undefined) {
      k = vk.kind === 'secret'
        ? webcrypto.subtle.importKey('raw', vk.key.export(), { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify'])
        : importSPKI(vk.key.export({ type: 'spki', format: 'pem' }) as string, alg)
      byAlg.set(alg, k)
      k.catch(() => { byAlg.delete(alg) })
    }
    return await k
  }
}

/** Why a token was refused, for `error_description` and the error body. */
export function refusalReason (err: unknown): string {
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'the token is too old' : 'the token has expired'
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `the token has no "${err.claim}" claim`
    if (err.claim === 'nbf') return 'the token is not valid yet'
    if (err.claim === 'iat') return 'the token was issued in the future'
    if (err.reason === 'invalid') return `the token's "${err.claim}" claim is malformed`
    return `the token's "${err.claim}" claim is not accepted`
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the token\'s algorithm is not accepted'
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token\'s signature is invalid'
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key matches the token'
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'several keys match the token; it needs a "kid"'
  if (err instanceof errors.JOSENotSupported) return 'the token uses an unsupported algorithm or key'
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'the token is malformed'
  return 'the token could not be verified'
}
