/**
 * Reading a bearer token (policies/jwt/token.ts): the scheme in any case,
 * whitespace around and between as `\s` has it, exactly one token.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bearerToken } from '../../src/policies/jwt/token.js'

const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln'

test('bearerToken reads the token of a Bearer value, on the usual values and the edges', () => {
  const found: Array<[string, string]> = [
    [`Bearer ${token}`, token], [`bearer ${token}`, token], [`BEARER ${token}`, token], [`BeArEr\t${token}`, token],
    [`  Bearer   ${token}  `, token], [`\u00a0Bearer\u3000${token}\ufeff`, token], ['Bearer a', 'a'], ['bearer\na', 'a'],
    ['Bearer \u2028a\u2029', 'a'], ['Bearer a\u200bb', 'a\u200bb'], ['Bearer \u00e9t\u00e9', '\u00e9t\u00e9']
  ]
  for (const [v, expected] of found) assert.equal(bearerToken(v), expected, JSON.stringify(v))
  const none = [`Bearer ${token} extra`, 'Bearer', 'Bearer ', 'Bearer  ', 'Bearerx abc', `Basic ${token}`, `Bearer${token}`,
    '', ' ', 'Bearer a\u00a0b', 'Bearér abc', 'Bearer\u0085abc']
  for (const v of none) assert.equal(bearerToken(v), undefined, JSON.stringify(v))
  assert.equal(bearerToken(undefined), undefined)
})
