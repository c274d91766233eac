/**
 * Test helpers: a plain-ioredis "gateway side" (what the gateway does on the wire,
 * with no SDK code), a LIFO cleanup stack, and a poll for conditions that have no event.
 */
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import { STREAM_FIELD, type HttpRequest, type ReplyMessage, type RequestMessage, type RollbackMessage } from '@switchyard/protocol'
import { Redis } from 'ioredis'
import { serve, type ServeOptions, type Service } from '../src/index.js'

/** Runs cleanups last-in first-out in one `t.after`, so services close before Redis stops. */
export function cleanups (t: TestContext): (fn: () => unknown) => void {
  const stack: Array<() => unknown> = []
  t.after(async () => {
    while (stack.length > 0) await stack.pop()!()
  })
  return fn => { stack.push(fn) }
}

export function newPrefix (): string {
  return `test-${randomUUID()}`
}

export function httpRequest (over: Partial<HttpRequest> = {}): HttpRequest {
  return { path: '/things/7', method: 'POST', params: { id: '7' }, query: {}, headers: { 'content-type': 'application/json' }, body: { n: 1 }, ...over }
}

/** Polls `cond` every 20 ms; for states Redis reports no event for (e.g. PUBSUB NUMSUB). */
export async function waitFor (cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!await cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** What a gateway instance does on the wire, written against plain ioredis. */
export class FakeGateway {
  readonly command: Redis
  readonly subscriber: Redis
  readonly replyChannel: string
  /** Every reply received, in order, parsed (or the raw string when it is not JSON). */
  readonly replies: Array<ReplyMessage | string> = []
  readonly #waiters = new Map<string, Array<(r: ReplyMessage) => void>>()

  private constructor (url: string, replyChannel: string) {
    this.replyChannel = replyChannel
    const opts = { retryStrategy: () => 20, maxRetriesPerRequest: null }
    this.command = new Redis(url, opts)
    this.subscriber = new Redis(url, opts)
    this.command.on('error', () => {})
    this.subscriber.on('error', () => {})
    this.subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== replyChannel) return
      let reply: ReplyMessage
      try {
        reply = JSON.parse(raw) as ReplyMessage
      } catch {
        this.replies.push(raw)
        return
      }
      this.replies.push(reply)
      const key = `${reply.id}\0${reply.service}`
      const waiters = this.#waiters.get(key)
      this.#waiters.delete(key)
      for (const w of waiters ?? []) w(reply)
    })
  }

  static async connect (url: string, prefix: string): Promise<FakeGateway> {
    const gw = new FakeGateway(url, `${prefix}:responses.gw-${randomUUID().slice(0, 8)}`)
    await gw.subscriber.subscribe(gw.replyChannel)
    return gw
  }

  /** The first reply for (`id`, `service`), received already or still to come. */
  reply (id: string, service: string): Promise<ReplyMessage> {
    const seen = this.replies.find((r): r is ReplyMessage => typeof r === 'object' && r.id === id && r.service === service)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise(resolve => {
      const key = `${id}\0${service}`
      this.#waiters.set(key, [...(this.#waiters.get(key) ?? []), resolve])
    })
  }

  repliesFor (id: string): ReplyMessage[] {
    return this.replies.filter((r): r is ReplyMessage => typeof r === 'object' && r.id === id)
  }

  request (id: string, over: Partial<RequestMessage> = {}): RequestMessage {
    return { type: 'request', id, request: httpRequest(), responseChannel: this.replyChannel, deadline: Date.now() + 30_000, ...over }
  }

  /** PUBLISH a request (pub/sub); resolves with the number of subscribers that got it. */
  async publish (channel: string, message: RequestMessage | RollbackMessage | string): Promise<number> {
    return await this.command.publish(channel, typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** XADD a request or rollback entry (streams), as the gateway does. */
  async xadd (stream: string, message: RequestMessage | RollbackMessage | string): Promise<string> {
    const raw = typeof message === 'string' ? message : JSON.stringify(message)
    return (await this.command.xadd(stream, 'MAXLEN', '~', 100_000, '*', STREAM_FIELD, raw))!
  }

  /** Subscriptions come back after a reconnect; wait until ours is active again. */
  async resubscribed (): Promise<void> {
    if (this.command.status !== 'ready') await once(this.command, 'ready')
    await waitFor(async () => {
      const [, n] = await this.command.pubsub('NUMSUB', this.replyChannel) as [string, number]
      return Number(n) > 0
    }, 'the reply subscription')
  }

  close (): void {
    this.command.disconnect()
    this.subscriber.disconnect()
  }
}

/** serve() with the test's Redis and prefix, closed by the cleanup stack. */
export async function startService (defer: (fn: () => unknown) => void, url: string, options: ServeOptions): Promise<Service> {
  const svc = await serve({ redis: url, ...options })
  defer(() => svc.close())
  return svc
}

/** A promise and its resolve function. */
export function deferred<T = void> (): { promise: Promise<T>, resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>(_resolve => { resolve = _resolve })
  return { promise, resolve }
}
