/**
 * Anchor: the floor of the gateway's own stack. A `node:http` server and an
 * undici Pool (the gateway's pool options), proxying through undici's dispatch
 * handler interface the way the gateway's passthrough does (`DirectCall` in
 * packages/gateway/src/pipeline/stream.ts): the raw head filtered into a flat
 * list for `writeHead`, body chunks to `res.write` with back-pressure. None of
 * the gateway's features: no request id, no access log, no metrics, no
 * forwarding headers, no router. What the gateway costs over this is what its
 * features and its own code cost; what this costs against the other anchors
 * bounds what a gateway built on `node:http` + undici can reach against them.
 * Usage: node --import tsx bench/anchors/dispatch-floor.ts --upstream http://127.0.0.1:PORT
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { Pool, type Dispatcher } from 'undici'
import { argValue, exitWithParent, listenLoopback, requiredArg } from '../lib/child.js'
import { HOP_BY_HOP } from '../lib/hop-by-hop.js'

/** The names a Connection header lists besides its usual values (which name no header). */
function connectionListed (value: string | undefined): Set<string> | undefined {
  return value === undefined || value === 'keep-alive' || value === 'close' ? undefined : new Set(value.toLowerCase().split(',').map(s => s.trim()))
}

/** The client's headers as undici's flat list, hop-by-hop ones (and those its Connection header names) left out. */
function requestHeaders (headers: IncomingMessage['headers']): string[] {
  const out: string[] = []
  const extra = connectionListed(headers.connection)
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || extra?.has(name) === true) continue
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  return out
}

/** One proxied request as undici's dispatch handler. */
class Call implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse
  #abort: ((err?: Error) => void) | undefined = undefined
  #resume: (() => void) | undefined = undefined
  #headSent = false

  constructor (res: ServerResponse) {
    this.#res = res
    res.on('close', () => { if (!res.writableFinished) this.#abort?.(new Error('client closed')) })
  }

  onConnect (abort: (err?: Error) => void): void { this.#abort = abort }

  onHeaders (statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true
    // Like the gateway's downstreamRawHeaders: hop-by-hop names dropped in one pass, and the
    // names the service's Connection header lists (rare) in a second.
    let out: string[] = []
    let connection: string | undefined
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1')
      const lower = name.toLowerCase()
      if (lower === 'connection') connection = raw[i + 1]!.toString('latin1')
      if (HOP_BY_HOP.has(lower)) continue
      out.push(name, raw[i + 1]!.toString('latin1'))
    }
    const extra = connectionListed(connection)
    if (extra !== undefined) {
      const kept: string[] = []
      for (let i = 0; i < out.length; i += 2) if (!extra.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!)
      out = kept
    }
    this.#res.writeHead(statusCode, out)
    this.#headSent = true
    this.#resume = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    const res = this.#res
    if (res.write(chunk)) return true
    if (!res.destroyed) res.once('drain', this.#resume!)
    return false
  }

  onComplete (): void { this.#res.end() }

  onError (): void {
    const res = this.#res
    if (this.#headSent || res.headersSent) { res.destroy(); return }
    res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"bad gateway"}')
  }
}

const pool = new Pool(requiredArg('upstream'), { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 })

const server = createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  const call = new Call(res)
  try {
    pool.dispatch({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: requestHeaders(req.headers), body: hasBody ? req : null }, call)
  } catch {
    call.onError()
  }
})
server.keepAliveTimeout = 65_000

exitWithParent(async () => { server.closeAllConnections(); server.close(); await pool.close() })
await listenLoopback(server, Number(argValue('port') ?? 0)) // --port: for profiling by hand
