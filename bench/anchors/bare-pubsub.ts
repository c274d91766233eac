/**
 * Anchor for the Redis routes: the same pub/sub round trip as a gateway's
 * `type: "redis"` service (PROTOCOL §1), with ioredis and no gateway. For each
 * request it PUBLISHes `{type: "request", id, request, responseChannel}` on the
 * service's channel and answers when a reply with that id arrives on its own
 * response channel (one subscriber connection, one command connection).
 * Usage: node --import tsx bench/anchors/bare-pubsub.ts --redis redis://127.0.0.1:PORT --channel bench:svc
 */
import { randomUUID } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import { Redis } from 'ioredis'
import { argValue, exitWithParent, listenLoopback, requiredArg } from '../lib/child.js'

/** A request with no reply by then gets a 504, so a lost message never hangs a connection. */
const TIMEOUT_MS = 10_000

const url = requiredArg('redis')
const channel = requiredArg('channel')
const responseChannel = `bench:responses.bare-${randomUUID()}`
const pub = new Redis(url, { lazyConnect: true })
const sub = new Redis(url, { lazyConnect: true })
await Promise.all([pub.connect(), sub.connect()])
await sub.subscribe(responseChannel)

interface Pending { res: ServerResponse, timer: NodeJS.Timeout }
const pending = new Map<string, Pending>()
let seq = 0
const idBase = randomUUID().slice(0, 8)

function answer (res: ServerResponse, status: number, body: unknown): void {
  const buf = Buffer.from(JSON.stringify(body ?? null))
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': buf.length })
  res.end(buf)
}

sub.on('message', (_channel: string, message: string) => {
  let reply: { id?: unknown, response?: { status?: number, body?: unknown } }
  try { reply = JSON.parse(message) } catch { return }
  const p = typeof reply.id === 'string' ? pending.get(reply.id) : undefined
  if (p === undefined) return
  pending.delete(reply.id as string)
  clearTimeout(p.timer)
  answer(p.res, reply.response?.status ?? 200, reply.response?.body)
})

const server = createServer((req, res) => {
  const u = new URL(req.url ?? '/', 'http://127.0.0.1')
  const id = `${idBase}-${++seq}`
  const query: Record<string, string | string[]> = {}
  for (const key of u.searchParams.keys()) {
    const all = u.searchParams.getAll(key)
    query[key] = all.length === 1 ? all[0]! : all
  }
  const message = JSON.stringify({
    type: 'request',
    id,
    request: { path: u.pathname, method: req.method, params: {}, query, headers: req.headers },
    responseChannel
  })
  const timer = setTimeout(() => { pending.delete(id); answer(res, 504, { error: 'timeout' }) }, TIMEOUT_MS)
  pending.set(id, { res, timer })
  res.on('close', () => { if (pending.delete(id)) clearTimeout(timer) })
  pub.publish(channel, message).catch(() => {
    if (pending.delete(id)) { clearTimeout(timer); answer(res, 502, { error: 'publish failed' }) }
  })
})
server.keepAliveTimeout = 65_000

exitWithParent(async () => {
  server.closeAllConnections()
  server.close()
  for (const p of pending.values()) clearTimeout(p.timer)
  pub.disconnect()
  sub.disconnect()
})
await listenLoopback(server, Number(argValue('port') ?? 0)) // --port: for profiling by hand
