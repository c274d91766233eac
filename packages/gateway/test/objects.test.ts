/**
 * pipeline/objects.ts: the copies the pipeline adds to (headers, merged
 * bodies) keep own properties only, keep an own "__proto__" key as data, and
 * leave out the skipped name.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assignOwn, copyOwn } from '../src/pipeline/objects.js'

test('copyOwn copies own enumerable properties, not inherited ones, and can leave one name out', () => {
  const proto = { inherited: 'x' }
  const src = Object.assign(Object.create(proto) as Record<string, string>, { 'content-type': 'text/plain', 'content-length': '3', date: 'd' })
  assert.deepEqual(copyOwn(src), { 'content-type': 'text/plain', 'content-length': '3', date: 'd' })
  assert.deepEqual(copyOwn(src, 'content-length'), { 'content-type': 'text/plain', date: 'd' })
  const copy = copyOwn(src)
  copy.age = '1'
  assert.equal(src.age, undefined)
  assert.equal(Object.getPrototypeOf(copy), Object.prototype)
})

test('an own "__proto__" key (JSON.parse makes one) is copied as data and does not set the prototype', () => {
  const parsed = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>
  const copy = copyOwn(parsed)
  assert.equal(Object.getPrototypeOf(copy), Object.prototype)
  assert.equal((copy as { polluted?: unknown }).polluted, undefined)
  assert.deepEqual(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value, { polluted: true })
  assert.equal(JSON.stringify(copy), '{"__proto__":{"polluted":true},"a":1}')

  const target: Record<string, unknown> = { a: 0, b: 2 }
  assignOwn(target, parsed)
  assert.equal(Object.getPrototypeOf(target), Object.prototype)
  assert.deepEqual(JSON.parse(JSON.stringify(target)), JSON.parse('{"a":1,"b":2,"__proto__":{"polluted":true}}'))
})
