/**
 * The backend every HTTP scenario ends at: a minimal `node:http` server.
 *   GET  /data (and any other path)  ~100 bytes of JSON with Content-Length
 *   GET  /a, /b, /c                   small JSON objects with distinct keys (the fan-out merge)
 *   GET  /big                         1 MiB, written in 64 KiB chunks with back-pressure
 *   POST (any path)                   reads the body, answers its size as JSON
 * Usage: node --import tsx bench/backend.ts [--port N]
 */
import { createServer, type ServerResponse } from 'node:http'
import { argValue, exitWithParent, listenLoopback } from './lib/child.js'
import { BIG_BYTES } from './lib/constants.js'

const CHUNK = Buffer.alloc(64 * 1024, 'x')

function json (value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value))
}

const DATA = json({ id: 'bench-0001', name: 'switchyard benchmark payload', tags: ['a', 'b', 'c'], price: 12.5, stock: 42, ok: true })
const PARTS: Record<string, Buffer> = {
  '/a': json({ a: 1, name: 'service a', ok: true }),
  '/b': json({ b: 2, name: 'service b', ok: true }),
  '/c': json({ c: 3, name: 'service c', ok: true })
}

function send (res: ServerResponse, body: Buffer): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

function sendBig (res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG_BYTES })
  let left = BIG_BYTES / CHUNK.length
  const pump = (): void => {
    while (left > 0) {
      left--
      if (left === 0) { res.end(CHUNK); return }
      if (!res.write(CHUNK)) { res.once('drain', pump); return }
    }
  }
  pump()
}

const server = createServer((req, res) => {
  if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
    let size = 0
    req.on('data', (chunk: Buffer) => { size += chunk.length })
    req.on('end', () => send(res, json({ received: size, ok: true })))
    return
  }
  const q = req.url?.indexOf('?') ?? -1
  const path = q === -1 ? req.url ?? '/' : req.url!.slice(0, q)
  if (path === '/big') { sendBig(res); return }
  send(res, PARTS[path] ?? DATA)
})
// Longer than any client's idle time, so proxies keep their pooled connections.
server.keepAliveTimeout = 65_000

exitWithParent(() => { server.closeAllConnections(); server.close() })
await listenLoopback(server, Number(argValue('port') ?? 0))
