/**
 * The verified-token cache (policies/jwt/verifier.ts): a token verified once is
 * taken as verified until the first of its exp (plus the clock tolerance), its
 * maxTokenAge, and TOKEN_CACHE_MS; never longer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cacheDeadline, TOKEN_CACHE_MS } from '../../src/policies/jwt/verifier.js'

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
