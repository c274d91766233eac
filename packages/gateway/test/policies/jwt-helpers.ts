/**
 * Tokens and keys for the authentication tests: real signatures (jose), the
 * hand-made forgeries an attacker would send (`alg: none`, HS256 keyed with a
 * public key's PEM), and a JWKS served by a real node:http server whose keys
 * a test can rotate.
 */
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose'

export interface KeyPair { publicKey: KeyObject, privateKey: KeyObject, publicPem: string }

function pair (kp: { publicKey: KeyObject, privateKey: KeyObject }): KeyPair {
  return { ...kp, publicPem: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}

export function rsaKeys (): KeyPair { return pair(generateKeyPairSync('rsa', { modulusLength: 2048 })) }
export function ecKeys (): KeyPair { return pair(generateKeyPairSync('ec', { namedCurve: 'P-256' })) }
export function edKeys (): KeyPair { return pair(generateKeyPairSync('ed25519')) }

/** Seconds since the epoch, as JWT time claims count. */
export function nowSec (): number {
  return Math.floor(Date.now() / 1000)
}

/** A properly signed token. `alg` must fit the key. */
export async function sign (payload: JWTPayload, key: KeyObject | Uint8Array, alg: string, header: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT(payload).setProtectedHeader({ ...header, alg, typ: 'JWT' }).sign(key)
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

/** An unsigned token (`alg: none`, empty signature). */
export function unsignedToken (payload: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`
}

/**
 * An HMAC token made by hand, with any bytes as the secret: how an attacker
 * signs HS256 with a server's public key PEM (algorithm confusion).
 */
export function hmacToken (payload: JWTPayload, secret: string | Buffer, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256', header: Record<string, unknown> = {}): string {
  const input = `${b64({ ...header, alg, typ: 'JWT' })}.${b64(payload)}`
  const sig = createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url')
  return `${input}.${sig}`
}

/** The public JWK of `key`, with its kid and alg. */
export async function publicJwk (key: KeyObject, kid: string, alg: string): Promise<JWK> {
  return { ...await exportJWK(key), kid, alg, use: 'sig' }
}

export interface JwksServer {
  url: string
  server: Server
  /** Replaces the keys served from now on. */
  setKeys: (keys: JWK[]) => void
  /** How many times the key set was fetched. */
  fetches: () => number
  close: () => Promise<void>
}

/** A JWKS endpoint on port 0 serving `{ keys }`. */
export async function startJwks (keys: JWK[]): Promise<JwksServer> {
  let current = keys
  let count = 0
  const server = createServer((_req, res) => {
    count++
    const body = JSON.stringify({ keys: current })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    server,
    setKeys: (k) => { current = k },
    fetches: () => count,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** The claims an HTTP service received in `x-switchyard-claims` (base64url JSON). */
export function claimsHeader (value: string | string[] | undefined): Record<string, unknown> | undefined {
  if (typeof value !== 'string') return undefined
  return JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Record<string, unknown>
}
