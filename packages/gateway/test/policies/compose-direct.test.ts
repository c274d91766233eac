/**
 * The callback form of a policy chain (policies/types.ts `composeDirect`): the
 * same order as `compose`, each policy handed the rest of the chain in both
 * forms, and no callback chain at all when one policy has no callback form.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compose, composeDirect, settle, transparent, type DirectHandler, type Handler, type Policy } from '../../src/policies/types.js'
import type { GatewayRequest, GatewayResponse } from '../../src/pipeline/types.js'

const greq = { id: 'r1' } as unknown as GatewayRequest
const answer = (status: number): GatewayResponse => ({ status, headers: {}, body: undefined })

/** A policy that records its name on the way in, in either form; `rest` records which form the rest of the chain was given in. */
function tracing (name: string, trail: string[], withDirect: boolean): Policy {
  const promiseForm = (next: Handler): Handler => async (r) => { trail.push(`${name}:promise`); return await next(r) }
  return transparent(promiseForm, withDirect
    ? (next: DirectHandler, rest: Handler): DirectHandler => (r, done, fail) => {
        trail.push(`${name}:direct`)
        // A request this form does not serve goes round its promise form, as the real policies do.
        if ((r as { slow?: boolean }).slow === true) settle(promiseForm(rest)(r), r, done, fail)
        else next(r, done, fail)
      }
    : undefined)
}

test('the callback chain runs the policies in compose\'s order and ends in the callback terminal', async () => {
  const trail: string[] = []
  const policies = [tracing('a', trail, true), tracing('b', trail, true)]
  const terminal: Handler = async () => { trail.push('terminal:promise'); return answer(201) }
  const direct: DirectHandler = (r, done) => { trail.push('terminal:direct'); done(answer(200), r) }
  const chain = composeDirect(policies, terminal, direct)!
  const got = await new Promise<GatewayResponse>((resolve, reject) => { chain(greq, (g) => { resolve(g) }, (e) => { reject(e instanceof Error ? e : new Error(String(e))) }) })
  assert.equal(got.status, 200)
  assert.deepEqual(trail, ['a:direct', 'b:direct', 'terminal:direct'])
  // The promise chain is the same order.
  trail.length = 0
  assert.equal((await compose(policies, terminal)(greq)).status, 201)
  assert.deepEqual(trail, ['a:promise', 'b:promise', 'terminal:promise'])
})

test('a request a policy hands to its promise form goes on through the promise form of the rest', async () => {
  const trail: string[] = []
  const chain = composeDirect([tracing('a', trail, true), tracing('b', trail, true)], async () => { trail.push('terminal:promise'); return answer(201) }, (r, done) => { done(answer(200), r) })!
  const slow = { id: 'r2', slow: true } as unknown as GatewayRequest
  const got = await new Promise<GatewayResponse>((resolve, reject) => { chain(slow, (g) => { resolve(g) }, (e) => { reject(e instanceof Error ? e : new Error(String(e))) }) })
  assert.equal(got.status, 201)
  assert.deepEqual(trail, ['a:direct', 'a:promise', 'b:promise', 'terminal:promise'])
})

test('a failure in the promise form reaches `fail`, with the request', async () => {
  const chain = composeDirect([tracing('a', [], true)], async () => { throw new Error('upstream gone') }, (r, done) => { done(answer(200), r) })!
  const slow = { id: 'r3', slow: true } as unknown as GatewayRequest
  const [err, r] = await new Promise<[unknown, GatewayRequest]>((resolve) => { chain(slow, () => { resolve([undefined, slow]) }, (e, g) => { resolve([e, g]) }) })
  assert.match(String(err), /upstream gone/)
  assert.equal(r, slow)
})

test('no callback chain when one policy has no callback form', () => {
  const trail: string[] = []
  assert.equal(composeDirect([tracing('a', trail, true), tracing('b', trail, false)], async () => answer(200), (r, done) => { done(answer(200), r) }), undefined)
  // With no policy at all, the chain is the terminal itself.
  const direct: DirectHandler = (r, done) => { done(answer(200), r) }
  assert.equal(composeDirect([], async () => answer(200), direct), direct)
})
