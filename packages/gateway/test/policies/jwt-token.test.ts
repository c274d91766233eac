/**
 * Reading a bearer token (policies/jwt/token.ts): what `/^\s*bearer\s+(\S+)\s*$/i`
 * captures, for any header value (a guard for whichever way it is read).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bearerToken } from '../../src/policies/jwt/token.js'

const REFERENCE = /^\s*bearer\s+(\S+)\s*$/i
const reference = (v: string): string | undefined => REFERENCE.exec(v)?.[1]

test('bearerToken reads the token of a Bearer value, on the usual values and the edges', () => {
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln'
  const cases = [
    `Bearer ${token}`, `bearer ${token}`, `BEARER ${token}`, `BeArEr\t${token}`, `  Bearer   ${token}  `,
    `\u00a0Bearer\u3000${token}\ufeff`, `Bearer ${token} extra`, 'Bearer', 'Bearer ', 'Bearer  ', 'Bearerx abc',
    `Basic ${token}`, `Bearer${token}`, '', ' ', 'Bearer a', 'bearer\na', 'Bearer \u2028a\u2029', 'Bearer a\u200bb',
    'Bearer \u00e9t\u00e9', 'Bearer a\u00a0b', 'Bearér abc', 'Bearer\u0085abc'
  ]
  for (const v of cases) assert.equal(bearerToken(v), reference(v), JSON.stringify(v))
  assert.equal(bearerToken(undefined), undefined)
})

test('bearerToken agrees with the regular expression on random values', () => {
  const alphabet = ['b', 'e', 'a', 'r', 'B', 'E', 'A', 'R', 'x', '.', '-', ' ', '\t', '\n', '\u00a0', '\u2003', '\u3000', '\ufeff', '\u0085', '\u00e9']
  let seed = 12345
  const next = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let i = 0; i < 20000; i++) {
    const prefix = next(3) === 0 ? '' : ['bearer ', 'Bearer\t', ' BEARER  '][next(3)]!
    let v = prefix
    const len = next(12)
    for (let k = 0; k < len; k++) v += alphabet[next(alphabet.length)]
    assert.equal(bearerToken(v), reference(v), JSON.stringify(v))
  }
})
