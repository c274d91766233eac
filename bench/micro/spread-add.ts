/**
 * Why the gateway copies headers with copyOwn (packages/gateway/src/pipeline/objects.ts)
 * rather than `{ ...headers }`: on Node 20 (V8 11.3), adding a property that the
 * source did not have to an object made by spread takes a slow path. Run:
 *
 *   node --import tsx bench/micro/spread-add.ts
 *
 * Prints ns per operation for each way of copying a small headers object and
 * adding the four headers a cache hit adds (Age, Cache-Status, X-Request-Id,
 * Content-Length). Not part of `npm run bench`: a microbenchmark of one
 * language feature, not of the gateway.
 */
import { copyOwn } from '../../packages/gateway/src/pipeline/objects.js'

const stored: Record<string, string> = { 'content-type': 'application/json', date: 'Fri, 04 Dec 2026 14:38:44 GMT' }
const N = 1_000_000

type Copy = (i: number) => number

const ways: Array<[string, Copy]> = [
  ['spread, then overwrite an existing key', () => { const h = { ...stored }; h.date = 'x'; return h.date.length }],
  ['spread, then add 1 new key', () => { const h: Record<string, string> = { ...stored }; h.age = '0'; return h.age.length }],
  ['spread, then add 4 new keys', (i) => {
    const h: Record<string, string> = { ...stored }
    h.age = String(i & 7); h['cache-status'] = 'hit'; h['x-request-id'] = 'id'; h['content-length'] = '112'
    return h.age.length
  }],
  ['Object.assign({}, …), then add 4', (i) => {
    const h: Record<string, string> = Object.assign({}, stored)
    h.age = String(i & 7); h['cache-status'] = 'hit'; h['x-request-id'] = 'id'; h['content-length'] = '112'
    return h.age.length
  }],
  ['copyOwn, then add 4', (i) => {
    const h = copyOwn(stored)
    h.age = String(i & 7); h['cache-status'] = 'hit'; h['x-request-id'] = 'id'; h['content-length'] = '112'
    return h.age.length
  }]
]

for (let round = 1; round <= 2; round++) {
  console.log(`round ${round} (Node ${process.version}, V8 ${process.versions.v8})`)
  for (const [name, fn] of ways) {
    let sink = 0
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < N; i++) sink += fn(i)
    const ns = Number(process.hrtime.bigint() - t0) / N
    console.log(`  ${name.padEnd(40)} ${ns.toFixed(1).padStart(8)} ns/op${sink === 0 ? ' (?)' : ''}`)
  }
}
