/**
 * JWT authentication (PRODUCT §4.1, §8.3, §9.2 "a missing JWT gives 500"):
 * real tokens against a real gateway and real backends. Forged tokens
 * (`alg: none`, HS256 keyed with the RSA public key's PEM) are refused, the
 * verified claims reach the service, and a JWKS rotation is picked up
 * without a restart.
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { createGateway } from '../../src/gateway.js'
import type { GatewayConfig } from '../../src/config/types.js'
import { GatewayError } from '@switchyard/protocol'
import { startBackend, json, unusedPort, type Backend } from '../helpers/backend.js'
import { startGateway, type TestGateway } from '../helpers/gateway.js'
import { claimsHeader, edKeys, ecKeys, hmacToken, nowSec, publicJwk, rsaKeys, sign, startJwks, unsignedToken, type JwksServer, type KeyPair } from './jwt-helpers.js'

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!'
const OTHER_SECRET = 'another-secret-for-one-service-only-123'
const ISS = 'https://idp.test'
const AUD = 'shop'
const secretBytes = (s: string): Uint8Array => new TextEncoder().encode(s)

interface ErrorBody { error: { code: string, message: string } }

/** A backend that answers with the claims it was given (decoded) and the body it got. */
async function claimsBackend (): Promise<Backend> {
  return await startBackend((req, res, body) => json(res, 200, { claims: claimsHeader(req.headers['x-switchyard-claims']) ?? null, body: body.toString() }))
}

async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Headers, text: string }> {
  const res = await fetch(url, { headers })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function errorCode (text: string): string {
  return (JSON.parse(text) as ErrorBody).error.code
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` })

describe('JWT with a shared secret', () => {
  let b: Backend
  let gw: TestGateway
  const onErrorSeen: unknown[] = []
  let good: string
  before(async () => {
    b = await claimsBackend()
    const svc = { a: { type: 'http', url: `${b.url}/svc` } }
    const k = { type: 'jwt', key: SECRET }
    gw = await startGateway({
      http: {
        authentication: { type: 'jwt', key: SECRET, issuer: ISS, audience: AUD },
        routes: {
          '/me': { GET: { services: svc } },
          '/public': { GET: { authentication: 'none', services: svc } },
          '/cookie': { GET: { authentication: { ...k, cookie: 'session' }, services: svc } },
          '/header': { GET: { authentication: { ...k, jwtHeaderField: 'X-Api-Token' }, services: svc } },
          '/hook': { GET: { authentication: { ...k, getJwt: (r: { query: Record<string, string> }) => r.query.t }, services: svc } },
          '/body': { POST: { authentication: { ...k, jwtBodyField: 'token' }, services: svc } },
          '/admin': { GET: { authentication: { ...k, verify: async (c: { role?: string }) => c.role === 'admin' }, services: svc } },
          '/verify-throws': { GET: { authentication: { ...k, verify: () => { throw new Error('verify exploded') } }, services: svc } },
          '/prism-errors': { GET: { authentication: { ...k, errorStatus: 418, errorBody: 'Go away.', onError: (e: unknown) => { onErrorSeen.push(e) } }, services: svc } },
          '/skew': { GET: { authentication: { ...k, clockToleranceSec: 120 }, services: svc } },
          '/prism-options': { GET: { authentication: { ...k, verifyOptions: { algorithms: ['HS256'], issuer: ISS, clockTolerance: 120 } }, services: svc } },
          '/per-service': { GET: { services: { a: { type: 'http', url: `${b.url}/svc`, authentication: { type: 'jwt', key: OTHER_SECRET } } } } }
        }
      }
    } as unknown as GatewayConfig)
    good = await sign({ sub: 'u1', role: 'user', iss: ISS, aud: AUD, exp: nowSec() + 600 }, secretBytes(SECRET), 'HS256')
  })
  after(async () => {
    await gw.close()
    await b.close()
  })

  test('a valid token passes and its claims reach the HTTP service', async () => {
    const r = await get(`${gw.url}/me`, bearer(good))
    assert.equal(r.status, 200, r.text)
    const { claims } = JSON.parse(r.text) as { claims: Record<string, unknown> }
    assert.equal(claims.sub, 'u1')
    assert.equal(claims.iss, ISS)
    assert.equal(claims.role, 'user')
  })

  test('known tokens sent again and in turn each pass with their own claims', async () => {
    const other = await sign({ sub: 'u2', role: 'user', iss: ISS, aud: AUD, exp: nowSec() + 600 }, secretBytes(SECRET), 'HS256')
    const seen: unknown[] = []
    for (const t of [good, good, other, other, good, other]) {
      const r = await get(`${gw.url}/me`, bearer(t))
      assert.equal(r.status, 200, r.text)
      seen.push((JSON.parse(r.text) as { claims: { sub: string } }).claims.sub)
    }
    assert.deepEqual(seen, ['u1', 'u1', 'u2', 'u2', 'u1', 'u2'])
  })

  test('no token is a 401 GW_ERR_AUTH_MISSING with a bare Bearer challenge (Prism answered 500)', async () => {
    const before = b.requests.length
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: 'Bearer' }] as Array<Record<string, string>>) {
      const r = await get(`${gw.url}/me`, headers)
      assert.equal(r.status, 401, r.text)
      assert.equal(errorCode(r.text), 'GW_ERR_AUTH_MISSING')
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="switchyard"')
    }
    assert.equal(b.requests.length, before, 'the service was not called')
  })

  test('an unsigned token (alg: none) is refused', async () => {
    const before = b.requests.length
    const forged = unsignedToken({ sub: 'admin', role: 'admin', iss: ISS, aud: AUD, exp: nowSec() + 600 })
    const r = await get(`${gw.url}/me`, bearer(forged))
    assert.equal(r.status, 401, r.text)
    assert.equal(errorCode(r.text), 'GW_ERR_AUTH_INVALID')
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="switchyard", error="invalid_token", error_description="[^"]+"$/)
    assert.equal(b.requests.length, before)
  })

  const refusals: Array<[string, () => Promise<string>, RegExp]> = [
    ['an expired token', async () => await sign({ sub: 'u1', iss: ISS, aud: AUD, iat: nowSec() - 7200, exp: nowSec() - 3600 }, secretBytes(SECRET), 'HS256'), /expired/],
    ['a token not valid yet (nbf)', async () => await sign({ sub: 'u1', iss: ISS, aud: AUD, nbf: nowSec() + 3600, exp: nowSec() + 7200 }, secretBytes(SECRET), 'HS256'), /not valid yet/],
    ['a token from another issuer', async () => await sign({ sub: 'u1', iss: 'https://evil.test', aud: AUD, exp: nowSec() + 600 }, secretBytes(SECRET), 'HS256'), /'iss' claim is not accepted/],
    ['a token without an issuer', async () => await sign({ sub: 'u1', aud: AUD, exp: nowSec() + 600 }, secretBytes(SECRET), 'HS256'), /no 'iss' claim/],
    ['a token for another audience', async () => await sign({ sub: 'u1', iss: ISS, aud: 'billing', exp: nowSec() + 600 }, secretBytes(SECRET), 'HS256'), /'aud' claim is not accepted/],
    ['a token signed with another secret', async () => await sign({ sub: 'u1', iss: ISS, aud: AUD, exp: nowSec() + 600 }, secretBytes(OTHER_SECRET), 'HS256'), /signature is invalid/],
    ['a token that is not a JWT', async () => 'not-a-jwt', /malformed/]
  ]
  for (const [name, make, reason] of refusals) {
    test(`${name} is a 401 GW_ERR_AUTH_INVALID that does not echo the token`, async () => {
      const token = await make()
      const before = b.requests.length
      const r = await get(`${gw.url}/me`, bearer(token))
      assert.equal(r.status, 401, r.text)
      assert.equal(errorCode(r.text), 'GW_ERR_AUTH_INVALID')
      const challenge = r.headers.get('www-authenticate') ?? ''
      assert.ok(challenge.startsWith('Bearer realm="switchyard", error="invalid_token", error_description="'), challenge)
      assert.match(challenge, reason)
      assert.ok(!challenge.includes(token) && !r.text.includes(token), 'the token is never echoed')
      assert.equal(b.requests.length, before)
    })
  }

  test('clockToleranceSec (and Prism\'s verifyOptions.clockTolerance) accept a token expired within the tolerance', async () => {
    const late = await sign({ sub: 'u1', iss: ISS, aud: AUD, exp: nowSec() - 30 }, secretBytes(SECRET), 'HS256')
    assert.equal((await get(`${gw.url}/me`, bearer(late))).status, 401)
    assert.equal((await get(`${gw.url}/skew`, bearer(late))).status, 200)
    assert.equal((await get(`${gw.url}/prism-options`, bearer(late))).status, 200)
    const otherIssuer = await sign({ sub: 'u1', iss: 'https://evil.test', exp: nowSec() + 60 }, secretBytes(SECRET), 'HS256')
    assert.equal((await get(`${gw.url}/prism-options`, bearer(otherIssuer))).status, 401, 'verifyOptions.issuer is enforced')
  })

  test('a route with authentication "none" is open, and a client cannot forge the claims header', async () => {
    const forged = Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url')
    const r = await get(`${gw.url}/public`, { 'x-switchyard-claims': forged })
    assert.equal(r.status, 200, r.text)
    assert.equal((JSON.parse(r.text) as { claims: unknown }).claims, null)
    const rec = b.requests.at(-1)!
    assert.equal(rec.headers['x-switchyard-claims'], undefined)
  })

  test('the token can come from a cookie; Authorization is then not read', async () => {
    const r = await get(`${gw.url}/cookie`, { cookie: `theme=dark; session=${good}; other=1` })
    assert.equal(r.status, 200, r.text)
    assert.equal((JSON.parse(r.text) as { claims: { sub: string } }).claims.sub, 'u1')
    const viaHeader = await get(`${gw.url}/cookie`, bearer(good))
    assert.equal(viaHeader.status, 401)
    assert.equal(errorCode(viaHeader.text), 'GW_ERR_AUTH_MISSING')
  })

  test('the token can come from another header, bare or with a Bearer prefix', async () => {
    assert.equal((await get(`${gw.url}/header`, { 'x-api-token': good })).status, 200)
    assert.equal((await get(`${gw.url}/header`, { 'x-api-token': `Bearer ${good}` })).status, 200)
    assert.equal((await get(`${gw.url}/header`, bearer(good))).status, 401)
  })

  test('the token can come from a getJwt hook (Prism)', async () => {
    assert.equal((await get(`${gw.url}/hook?t=${good}`)).status, 200)
    const r = await get(`${gw.url}/hook`)
    assert.equal(r.status, 401)
    assert.equal(errorCode(r.text), 'GW_ERR_AUTH_MISSING')
  })

  test('the token can come from a body field, and the service still gets the body byte for byte', async () => {
    const body = JSON.stringify({ token: good, item: 'book', qty: 2 })
    const res = await fetch(`${gw.url}/body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const text = await res.text()
    assert.equal(res.status, 200, text)
    const got = JSON.parse(text) as { claims: { sub: string }, body: string }
    assert.equal(got.claims.sub, 'u1')
    assert.equal(got.body, body)
    const none = await fetch(`${gw.url}/body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":"book"}' })
    assert.equal(none.status, 401)
    assert.equal(errorCode(await none.text()), 'GW_ERR_AUTH_MISSING')
  })

  test('a verify hook that says no is a 403 GW_ERR_AUTH_FORBIDDEN; one that says yes passes', async () => {
    const r = await get(`${gw.url}/admin`, bearer(good))
    assert.equal(r.status, 403, r.text)
    assert.equal(errorCode(r.text), 'GW_ERR_AUTH_FORBIDDEN')
    const admin = await sign({ sub: 'root', role: 'admin', exp: nowSec() + 60 }, secretBytes(SECRET), 'HS256')
    assert.equal((await get(`${gw.url}/admin`, bearer(admin))).status, 200)
  })

  test('a verify hook that throws is a 500 GW_ERR_HOOK_FAILED without the hook\'s message', async () => {
    const r = await get(`${gw.url}/verify-throws`, bearer(good))
    assert.equal(r.status, 500)
    assert.equal(errorCode(r.text), 'GW_ERR_HOOK_FAILED')
    assert.ok(!r.text.includes('exploded'))
  })

  test('Prism\'s errorStatus and errorBody shape refusals, and onError hears about them', async () => {
    const r = await get(`${gw.url}/prism-errors`)
    assert.equal(r.status, 418)
    assert.equal(r.text, 'Go away.')
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="switchyard"')
    assert.equal(onErrorSeen.length, 1)
    assert.equal((onErrorSeen[0] as GatewayError).code, 'GW_ERR_AUTH_MISSING')
  })

  test('a service\'s own authentication applies to its route instead of the global one', async () => {
    const mine = await sign({ sub: 'svc-user', exp: nowSec() + 60 }, secretBytes(OTHER_SECRET), 'HS256')
    assert.equal((await get(`${gw.url}/per-service`, bearer(mine))).status, 200)
    assert.equal((await get(`${gw.url}/per-service`, bearer(good))).status, 401)
  })
})

describe('JWT with public keys: the key decides the algorithms', () => {
  let b: Backend
  let gw: TestGateway
  let rsa: KeyPair
  let ec: KeyPair
  let ed: KeyPair
  before(async () => {
    b = await claimsBackend()
    rsa = rsaKeys()
    ec = ecKeys()
    ed = edKeys()
    const svc = { a: { type: 'http', url: b.url } }
    gw = await startGateway({
      http: {
        routes: {
          '/rsa': { GET: { authentication: { type: 'jwt', key: rsa.publicPem }, services: svc } },
          '/rsa-file': { GET: { authentication: { type: 'jwt', key: Buffer.from(rsa.publicPem) }, services: svc } },
          '/rsa-prism': { GET: { authentication: { type: 'jwt', key: rsa.publicPem, verifyOptions: { algorithms: ['RS256'] } }, services: svc } },
          '/ec': { GET: { authentication: { type: 'jwt', key: ec.publicPem }, services: svc } },
          '/ed': { GET: { authentication: { type: 'jwt', key: ed.publicKey }, services: svc } }
        }
      }
    } as unknown as GatewayConfig)
  })
  after(async () => {
    await gw.close()
    await b.close()
  })

  test('RS256 and PS256 tokens verify with an RSA public key PEM', async () => {
    for (const alg of ['RS256', 'PS256']) {
      const t = await sign({ sub: alg, exp: nowSec() + 60 }, rsa.privateKey, alg)
      assert.equal((await get(`${gw.url}/rsa`, bearer(t))).status, 200, alg)
    }
  })

  test('algorithm confusion: HS256 keyed with the public key\'s PEM is refused', async () => {
    const before = b.requests.length
    const forged = hmacToken({ sub: 'admin', exp: nowSec() + 60 }, rsa.publicPem)
    const forged2 = hmacToken({ sub: 'admin', exp: nowSec() + 60 }, Buffer.from(rsa.publicPem), 'HS512')
    for (const path of ['/rsa', '/rsa-file', '/rsa-prism']) {
      for (const t of [forged, forged2]) {
        const r = await get(`${gw.url}${path}`, bearer(t))
        assert.equal(r.status, 401, `${path}: ${r.text}`)
        assert.equal(errorCode(r.text), 'GW_ERR_AUTH_INVALID')
        assert.match(r.headers.get('www-authenticate') ?? '', /algorithm is not accepted/)
      }
    }
    assert.equal(b.requests.length, before)
  })

  test('an algorithm allow-list narrows what the key could verify', async () => {
    const ps = await sign({ sub: 'x', exp: nowSec() + 60 }, rsa.privateKey, 'PS256')
    assert.equal((await get(`${gw.url}/rsa-prism`, bearer(ps))).status, 401)
    const rs = await sign({ sub: 'x', exp: nowSec() + 60 }, rsa.privateKey, 'RS256')
    assert.equal((await get(`${gw.url}/rsa-prism`, bearer(rs))).status, 200)
  })

  test('ES256 and EdDSA keys verify their own tokens and nothing else', async () => {
    assert.equal((await get(`${gw.url}/ec`, bearer(await sign({ sub: 'e', exp: nowSec() + 60 }, ec.privateKey, 'ES256')))).status, 200)
    assert.equal((await get(`${gw.url}/ed`, bearer(await sign({ sub: 'd', exp: nowSec() + 60 }, ed.privateKey, 'EdDSA')))).status, 200)
    const rs = await sign({ sub: 'x', exp: nowSec() + 60 }, rsa.privateKey, 'RS256')
    assert.equal((await get(`${gw.url}/ec`, bearer(rs))).status, 401)
    assert.equal((await get(`${gw.url}/ed`, bearer(rs))).status, 401)
    assert.equal((await get(`${gw.url}/ec`, bearer(hmacToken({ sub: 'x' }, ec.publicPem)))).status, 401)
  })
})

describe('JWT with a JWKS URL', () => {
  let b: Backend
  let gw: TestGateway
  let jwks: JwksServer
  let keyA: KeyPair
  let keyB: KeyPair
  before(async () => {
    b = await claimsBackend()
    keyA = rsaKeys()
    keyB = rsaKeys()
    jwks = await startJwks([await publicJwk(keyA.publicKey, 'a', 'RS256')])
    gw = await startGateway({
      http: {
        authentication: { type: 'jwt', jwksUrl: jwks.url, issuer: ISS, jwksCooldownMs: 0 },
        routes: { '/me': { GET: { services: { a: { type: 'http', url: b.url } } } } }
      }
    } as unknown as GatewayConfig)
  })
  after(async () => {
    await gw.close()
    await jwks.close()
    await b.close()
  })

  test('a token signed with a published key passes; the set is cached', async () => {
    const t = await sign({ sub: 'a', iss: ISS, exp: nowSec() + 60 }, keyA.privateKey, 'RS256', { kid: 'a' })
    assert.equal((await get(`${gw.url}/me`, bearer(t))).status, 200)
    const fetched = jwks.fetches()
    assert.equal((await get(`${gw.url}/me`, bearer(t))).status, 200)
    assert.equal(jwks.fetches(), fetched, 'no refetch for a known kid')
  })

  test('an unknown kid refetches the set: refused before the rotation, accepted after it without a restart', async () => {
    const t = await sign({ sub: 'b', iss: ISS, exp: nowSec() + 60 }, keyB.privateKey, 'RS256', { kid: 'b' })
    const before = jwks.fetches()
    const r = await get(`${gw.url}/me`, bearer(t))
    assert.equal(r.status, 401, r.text)
    assert.match(r.headers.get('www-authenticate') ?? '', /no key matches/)
    assert.ok(jwks.fetches() > before, 'the unknown kid made the gateway refetch the set')
    jwks.setKeys([await publicJwk(keyA.publicKey, 'a', 'RS256'), await publicJwk(keyB.publicKey, 'b', 'RS256')])
    const ok = await get(`${gw.url}/me`, bearer(t))
    assert.equal(ok.status, 200, ok.text)
    assert.equal((JSON.parse(ok.text) as { claims: { sub: string } }).claims.sub, 'b')
  })

  test('HMAC tokens are refused before any key lookup (a JWKS holds public keys only)', async () => {
    const before = jwks.fetches()
    const forged = hmacToken({ sub: 'x', iss: ISS, exp: nowSec() + 60 }, keyA.publicPem, 'HS256', { kid: 'zzz' })
    assert.equal((await get(`${gw.url}/me`, bearer(forged))).status, 401)
    assert.equal((await get(`${gw.url}/me`, bearer(unsignedToken({ sub: 'x', iss: ISS })))).status, 401)
    assert.equal(jwks.fetches(), before)
  })

  test('an unreachable JWKS is a 503, not a 401 and not a crash', async (t) => {
    const port = await unusedPort()
    const { url } = await startGateway({
      http: {
        authentication: { type: 'jwt', jwksUrl: `http://127.0.0.1:${port}/jwks.json` },
        routes: { '/me': { GET: { services: { a: { type: 'http', url: b.url } } } } }
      }
    } as unknown as GatewayConfig, t)
    const token = await sign({ sub: 'a', exp: nowSec() + 60 }, keyA.privateKey, 'RS256', { kid: 'a' })
    const r = await get(`${url}/me`, bearer(token))
    assert.equal(r.status, 503, r.text)
    assert.equal(errorCode(r.text), 'GW_ERR_AUTH_JWKS_UNAVAILABLE')
    assert.ok(!r.text.includes(String(port)), 'the internal address is not shown')
  })
})

describe('authentication options are checked at start', () => {
  const silent = pino({ level: 'silent' })
  const svc = { a: { type: 'http', url: 'http://127.0.0.1:9/x' } }
  const rsa = rsaKeys()

  function startError (routeAuth: unknown, extra: Record<string, unknown> = {}): GatewayError {
    const config = { http: { ...extra, routes: { '/x': { GET: { ...(routeAuth === undefined ? {} : { authentication: routeAuth }), services: svc } } } } }
    try {
      createGateway(config as unknown as GatewayConfig, { logger: silent })
    } catch (err) {
      assert.ok(err instanceof GatewayError, String(err))
      return err
    }
    assert.fail('createGateway accepted the config')
  }

  const cases: Array<[string, unknown, string, RegExp]> = [
    ['no key', { type: 'jwt' }, 'http.routes["/x"].GET.authentication.key', /required/],
    ['an unknown type', { type: 'basic', key: SECRET }, 'http.routes["/x"].GET.authentication.type', /"jwt"/],
    ['alg none', { key: SECRET, algorithms: ['none'] }, 'http.routes["/x"].GET.authentication.algorithms[0]', /never accepted/],
    ['HS256 with a public key', { key: rsa.publicPem, algorithms: ['RS256', 'HS256'] }, 'http.routes["/x"].GET.authentication.algorithms[1]', /algorithm-confusion/],
    ['RS256 with a secret', { key: SECRET, verifyOptions: { algorithms: ['RS256'] } }, 'http.routes["/x"].GET.authentication.verifyOptions.algorithms[0]', /verifies only HS256/],
    ['HS256 with a JWKS', { jwksUrl: 'https://idp.test/jwks', algorithms: ['HS256'] }, 'http.routes["/x"].GET.authentication.algorithms[0]', /JWKS/],
    ['a bad JWKS URL', { jwksUrl: 'ftp://idp.test/jwks' }, 'http.routes["/x"].GET.authentication.jwksUrl', /http\(s\) URL/],
    ['Prism docs\' jwtField', { key: SECRET, jwtField: 'x-token' }, 'http.routes["/x"].GET.authentication.jwtField', /jwtHeaderField/],
    ['ignoreExpiration', { key: SECRET, verifyOptions: { ignoreExpiration: true } }, 'http.routes["/x"].GET.authentication.verifyOptions.ignoreExpiration', /always checks `exp`/],
    ['a broken PEM', { key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }, 'http.routes["/x"].GET.authentication.key', /not a valid public key/],
    ['a string other than "none"', 'off', 'http.routes["/x"].GET.authentication', /"none"/]
  ]
  for (const [name, auth, path, message] of cases) {
    test(`${name} → GW_ERR_CONFIG_INVALID at ${path}`, () => {
      const err = startError(auth)
      assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
      const issues = (err.data as { issues: Array<{ path: string, message: string }> }).issues
      const issue = issues.find(i => i.path === path)
      assert.ok(issue !== undefined, err.message)
      assert.match(issue.message, message)
      assert.ok(err.message.includes(path))
    })
  }

  test('the global authentication is reported at http.authentication', () => {
    const err = startError(undefined, { authentication: { type: 'jwt', key: '' } })
    assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
    assert.ok(err.message.includes('http.authentication.key'), err.message)
  })

  test('services of one route with different authentication are refused', () => {
    const config = {
      http: {
        routes: {
          '/x': { GET: { services: { a: { type: 'http', url: 'http://127.0.0.1:9/a', authentication: { type: 'jwt', key: SECRET } }, b: { type: 'http', url: 'http://127.0.0.1:9/b' } } } }
        }
      }
    }
    let err: unknown
    try { createGateway(config as unknown as GatewayConfig, { logger: silent }) } catch (e) { err = e }
    assert.ok(err instanceof GatewayError)
    assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
    assert.ok(err.message.includes('http.routes["/x"].GET.services.b.authentication'), err.message)
  })
})
