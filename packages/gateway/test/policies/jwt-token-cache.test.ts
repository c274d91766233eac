/**
 * The verified-token cache (policies/jwt/verifier.ts): a token verified once is
 * taken as verified until the first of its exp (plus the clock tolerance), its
 * maxTokenAge, and TOKEN_CACHE_MS; never longer.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { normalizeAuth, type Issue } from '../../src/policies/jwt/options.js'
import { cacheDeadline, createVerifier, TOKEN_CACHE_MS, type Verifier } from '../../src/policies/jwt/verifier.js'
import { nowSec, sign } from './jwt-helpers.js'

const NOW = 1_800_000_000_000

test('a token with no exp is kept for TOKEN_CACHE_MS at most', () => {
  assert.equal(cacheDeadline({}, {}, NOW), NOW + TOKEN_CACHE_MS)
  assert.equal(cacheDeadline({ exp: NOW / 1000 + 3600 }, {}, NOW), NOW + TOKEN_CACHE_MS)
})

test('a token that expires sooner is kept until its exp, plus the clock tolerance', () => {
  assert.equal(cacheDeadline({ exp: NOW / 1000 + 5 }, {}, NOW), NOW + 5000)
  assert.equal(cacheDeadline({ exp: NOW / 1000 + 5 }, { clockTolerance: 2 }, NOW), NOW + 7000)
})

test('maxTokenAge bounds the entry by iat; a span string or a missing iat is not kept at all', () => {
  assert.equal(cacheDeadline({ iat: NOW / 1000 - 100 }, { maxTokenAge: 110 }, NOW), NOW + 10_000)
  assert.equal(cacheDeadline({ iat: NOW / 1000 - 100 }, { maxTokenAge: '2h' }, NOW), 0)
  assert.equal(cacheDeadline({}, { maxTokenAge: 110 }, NOW), 0)
})

describe('createVerifier: known tokens', () => {
  const SECRET = 'a-secret-of-at-least-thirty-two-bytes!'
  const secret = new TextEncoder().encode(SECRET)
  function verifier (): Verifier {
    const issues: Issue[] = []
    const auth = normalizeAuth({ type: 'jwt', key: SECRET }, ['auth'], issues)
    assert.deepEqual(issues, [])
    return createVerifier(auth!)
  }

  test('a token is known only once verified, and each token gives its own claims', async () => {
    const v = verifier()
    const a = await sign({ sub: 'a', exp: nowSec() + 3600 }, secret, 'HS256')
    const b = await sign({ sub: 'b', exp: nowSec() + 3600 }, secret, 'HS256')
    assert.equal(v.known(a), undefined)
    assert.equal((await v.verify(a)).sub, 'a')
    assert.equal(v.known(a)?.sub, 'a')
    assert.equal(v.known(b), undefined, 'b was never verified, whatever was looked up last')
    assert.equal((await v.verify(b)).sub, 'b')
    assert.equal(v.known(b)?.sub, 'b')
    assert.equal(v.known(a)?.sub, 'a')
    // The same text in another string object (as each request's header is).
    assert.equal(v.known(`${a.slice(0, 10)}${a.slice(10)}`)?.sub, 'a')
  })

  test('a token looked up last stops being known at its deadline', async (t) => {
    const v = verifier()
    const exp = nowSec() + 5
    const token = await sign({ sub: 'a', exp }, secret, 'HS256')
    await v.verify(token)
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
    assert.equal(v.known(token)?.sub, 'a')
    assert.equal(v.known(token)?.sub, 'a', 'answered by the last-token check')
    t.mock.timers.setTime(exp * 1000)
    assert.equal(v.known(token), undefined)
    assert.equal(v.known(token), undefined, 'and not brought back by a second look')
  })
})
