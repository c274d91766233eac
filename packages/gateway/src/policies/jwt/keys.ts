/**
 * Verification keys and the algorithms each may verify (PRODUCT §4.1). The
 * allow-list is derived from the key's type, never from the token: a secret
 * verifies HS* only, a public key RS*, PS*, ES* or EdDSA only, so an HS256 token
 * "signed" with a public key's PEM (algorithm confusion) and `alg: none` can
 * never pass.
 */
import { createPublicKey, createSecretKey, KeyObject, type webcrypto } from 'node:crypto'

export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const
const RSA_PKCS1 = ['RS256', 'RS384', 'RS512'] as const
const RSA_PSS = ['PS256', 'PS384', 'PS512'] as const
const EDDSA = ['EdDSA', 'Ed25519'] as const
/** What a JWKS may verify: every asymmetric JWS algorithm jose supports (JWKS never carries HMAC secrets). */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [...RSA_PKCS1, ...RSA_PSS, 'ES256', 'ES384', 'ES512', ...EDDSA]
/** Every algorithm the policy knows; anything else (`none` included) is refused at start. */
export const KNOWN_ALGORITHMS: ReadonlySet<string> = new Set([...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS])

const EC_CURVES: Record<string, string> = { prime256v1: 'ES256', 'P-256': 'ES256', secp384r1: 'ES384', 'P-384': 'ES384', secp521r1: 'ES512', 'P-521': 'ES512' }

/** RFC 7518 §3.2: an HMAC key at least as long as the hash output. */
export const MIN_SECRET_BYTES = 32

export interface VerificationKey {
  readonly key: KeyObject
  readonly kind: 'secret' | 'public'
  /** The algorithms this key can verify. */
  readonly algorithms: readonly string[]
  /** Notes for the start-up log (never the key itself). */
  readonly warnings: readonly string[]
}

export type KeyResult = { ok: VerificationKey } | { error: string }

function isPem (text: string): boolean {
  return text.trimStart().startsWith('-----BEGIN')
}

function fromPublic (key: KeyObject, warnings: string[]): KeyResult {
  const type = key.asymmetricKeyType
  switch (type) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
      if (bits < 2048) return { error: `an RSA key of ${bits} bits is too short; jose verifies RS*/PS* only with keys of 2048 bits or more` }
      return { ok: { key, kind: 'public', algorithms: type === 'rsa' ? [...RSA_PKCS1, ...RSA_PSS] : [...RSA_PSS], warnings } }
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? ''
      const alg = EC_CURVES[curve]
      if (alg === undefined) return { error: `the EC curve ${curve === '' ? '(unknown)' : curve} is not supported; use P-256, P-384 or P-521` }
      return { ok: { key, kind: 'public', algorithms: [alg], warnings } }
    }
    case 'ed25519':
      return { ok: { key, kind: 'public', algorithms: [...EDDSA], warnings } }
    default:
      return { error: `a ${type ?? 'unknown'} key cannot verify JWTs; use an HMAC secret, or an RSA, EC (P-256/384/521) or Ed25519 public key` }
  }
}

function fromSecret (bytes: Buffer, warnings: string[]): KeyResult {
  if (bytes.length === 0) return { error: 'an empty secret' }
  if (bytes.length < MIN_SECRET_BYTES) warnings.push(`the HMAC secret is ${bytes.length} bytes; RFC 7518 asks for at least ${MIN_SECRET_BYTES}`)
  return { ok: { key: createSecretKey(bytes), kind: 'secret', algorithms: [...HMAC_ALGORITHMS], warnings } }
}

function fromPemText (pem: string, warnings: string[]): KeyResult {
  if (/PRIVATE KEY-----/.test(pem)) warnings.push('the key is a private key; only its public half is used (give the gateway the public key instead)')
  try {
    return fromPublic(createPublicKey(pem), warnings)
  } catch {
    return { error: 'the PEM text is not a valid public key, private key or certificate' }
  }
}

/**
 * The key to verify with, from what the config gave: a secret string (UTF-8,
 * as Prism's jsonwebtoken used it), PEM text (a string or a Buffer read from a
 * file), secret bytes, a KeyObject, a CryptoKey, or a JWK object.
 */
export function verificationKey (input: unknown): KeyResult {
  const warnings: string[] = []
  if (typeof input === 'string') return isPem(input) ? fromPemText(input, warnings) : fromSecret(Buffer.from(input, 'utf8'), warnings)
  if (input instanceof KeyObject) {
    if (input.type === 'secret') return fromSecret(input.export(), warnings)
    if (input.type === 'private') warnings.push('the key is a private key; only its public half is used')
    return fromPublic(input.type === 'private' ? createPublicKey(input) : input, warnings)
  }
  // CryptoKey is a global on Node 20, but not in its type declarations.
  const WebCryptoKey = (globalThis as { CryptoKey?: new () => webcrypto.CryptoKey }).CryptoKey
  if (WebCryptoKey !== undefined && input instanceof WebCryptoKey) return verificationKey(KeyObject.from(input))
  if (input instanceof Uint8Array) {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength)
    // A PEM file read with readFileSync is still a public key, never an HMAC secret.
    return isPem(buf.subarray(0, 64).toString('latin1')) ? fromPemText(buf.toString('utf8'), warnings) : fromSecret(Buffer.from(buf), warnings)
  }
  if (typeof input === 'object' && input !== null && typeof (input as { kty?: unknown }).kty === 'string') {
    const jwk = input as { kty: string, k?: unknown, alg?: unknown, d?: unknown }
    let r: KeyResult
    if (jwk.kty === 'oct') {
      if (typeof jwk.k !== 'string') return { error: 'an "oct" JWK needs its "k"' }
      r = fromSecret(Buffer.from(jwk.k, 'base64url'), warnings)
    } else {
      try {
        r = fromPublic(createPublicKey({ key: input as import('node:crypto').JsonWebKey, format: 'jwk' }), warnings)
      } catch {
        return { error: `the ${jwk.kty} JWK is not a valid key` }
      }
      if (jwk.d !== undefined) warnings.push('the JWK is a private key; only its public half is used')
    }
    if ('ok' in r && typeof jwk.alg === 'string') {
      if (!r.ok.algorithms.includes(jwk.alg)) return { error: `the JWK's "alg" ${jwk.alg} does not fit its key type` }
      return { ok: { ...r.ok, algorithms: [jwk.alg] } }
    }
    return r
  }
  return { error: 'expected a secret string, PEM text, a Buffer, a KeyObject or a JWK' }
}
