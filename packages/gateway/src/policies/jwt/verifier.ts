/**
 * Verifies a token with jose against a static key or a remote JWKS, and turns
 * every failure into a reason that is safe to show a client: fixed phrases,
 * never the token, never a payload value.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { KeyObject } from 'node:crypto'
import type { NormalizedAuth } from './options.js'

/** The key set could not be fetched or read: the token may be fine, the gateway cannot tell. */
export class KeySetUnavailable extends Error {
  constructor (cause: unknown) {
    super('the JWKS could not be fetched', { cause })
    this.name = 'KeySetUnavailable'
  }
}

export type Verifier = (token: string) => Promise<JWTPayload>

export function createVerifier (auth: NormalizedAuth): Verifier {
  const src = auth.source
  let key: KeyObject | JWTVerifyGetKey
  if (src.kind === 'key') key = src.key.key
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
  return async function verifyJwt (token) {
    const { payload } = await jwtVerify(token, key as KeyObject, options)
    if (jwtid !== undefined && payload.jti !== jwtid) throw new errors.JWTClaimValidationFailed('unexpected "jti" claim value', payload, 'jti', 'check_failed')
    if (nonce !== undefined && payload.nonce !== nonce) throw new errors.JWTClaimValidationFailed('unexpected "nonce" claim value', payload, 'nonce', 'check_failed')
    return payload
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
