/**
 * Anchor: the least a Node reverse proxy can do. A `node:http` server and an
 * undici Pool (same pool options as the gateway's), streaming
 * request → upstream → response, hop-by-hop headers stripped both ways (RFC 9110 §7.6.1).
 * `pool.stream()` writes the upstream body straight into the response, with no
 * intermediate Readable: undici's fastest API for proxying, so the bar is a high one.
 * Usage: node --import tsx bench/anchors/undici-proxy.ts --upstream http://127.0.0.1:PORT
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { Pool } from 'undici'
import { argValue, exitWithParent, listenLoopback, requiredArg } from '../lib/child.js'
import { HOP_BY_HOP } from '../lib/hop-by-hop.js'

type Headers = Record<string, string | string[] | undefined>

function strip (headers: IncomingHttpHeaders | Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const listed = headers.connection
  const extra = typeof listed === 'string' ? new Set(listed.toLowerCase().split(',').map(s => s.trim())) : undefined
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || extra?.has(name) === true) continue
    out[name] = value
  }
  return out
}

const pool = new Pool(requiredArg('upstream'), { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 })

const server = createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  pool.stream(
    { path: req.url ?? '/', method: req.method as 'GET', headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers))
      return res
    },
    (err) => {
      if (err === null) return
      if (res.headersSent) { res.destroy(); return }
      res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"bad gateway"}')
    }
  )
})
server.keepAliveTimeout = 65_000

exitWithParent(async () => { server.closeAllConnections(); server.close(); await pool.close() })
await listenLoopback(server, Number(argValue('port') ?? 0)) // --port: for profiling by hand
