/**
 * Real node:http backends on port 0 (STYLE §7). Every request is recorded with
 * its method, raw url, headers and the exact body bytes, and announced on
 * `events` so a test can await a request (e.g. a rollback) instead of sleeping.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { EventEmitter, once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  /** The request target exactly as it arrived (path and query, not normalized). */
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  /** The body bytes exactly as they arrived (empty for `raw` backends). */
  body: Buffer
  remoteAddress: string | undefined
}

/** Handler for a buffered backend: the body has been read already. */
export type BackendHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer, recorded: RecordedRequest) => void | Promise<void>

export interface BackendOptions {
  /** Do not read the body: the handler consumes `req` itself (large uploads). */
  raw?: boolean
}

export interface Backend {
  url: string
  port: number
  server: Server
  requests: RecordedRequest[]
  /** Resolves with the first recorded request (already received or future) matching `pred`. */
  waitFor: (pred: (r: RecordedRequest) => boolean) => Promise<RecordedRequest>
  close: () => Promise<void>
}

/** Answers 200 with a small JSON object naming the request. */
export const echoJson: BackendHandler = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ method: req.method, url: req.url }))
}

export function json (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(bytes.length), ...headers })
  res.end(bytes)
}

export async function startBackend (handler: BackendHandler = echoJson, options: BackendOptions = {}): Promise<Backend> {
  const requests: RecordedRequest[] = []
  const events = new EventEmitter()
  const server = createServer((req, res) => {
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      remoteAddress: req.socket.remoteAddress
    }
    const run = (body: Buffer): void => {
      recorded.body = body
      requests.push(recorded)
      events.emit('request', recorded)
      Promise.resolve()
        .then(() => handler(req, res, body, recorded))
        .catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(599)
          res.end(String(err))
        })
    }
    if (options.raw === true) { run(Buffer.alloc(0)); return }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => run(Buffer.concat(chunks)))
    req.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  let closed: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    async waitFor (pred) {
      const seen = requests.find(pred)
      if (seen !== undefined) return seen
      return await new Promise(resolve => {
        const on = (r: RecordedRequest): void => {
          if (pred(r)) { events.off('request', on); resolve(r) }
        }
        events.on('request', on)
      })
    },
    async close () {
      closed ??= new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await closed
    }
  }
}

/** A port on 127.0.0.1 with nothing listening (bound once, then released). */
export async function unusedPort (): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}
