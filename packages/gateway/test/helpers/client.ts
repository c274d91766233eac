/**
 * Clients that send the request target as written (fetch normalizes `..` and
 * `%2E%2E` away) and read responses byte for byte from a raw socket.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { createHash } from 'node:crypto'

export interface RawResponse { status: number, headers: IncomingHttpHeaders, body: Buffer }

/** A request through node:http with the path sent untouched. */
export async function rawRequest (base: string, path: string, opts: { method?: string, headers?: Record<string, string>, body?: Buffer | string } = {}): Promise<RawResponse> {
  const u = new URL(base)
  const headers: Record<string, string> = { ...opts.headers }
  // node:http sends a DELETE/OPTIONS body without framing unless told its length.
  if (opts.body !== undefined && !Object.keys(headers).some(h => /^(content-length|transfer-encoding)$/i.test(h))) headers['content-length'] = String(Buffer.byteLength(opts.body))
  const req = httpRequest({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers, agent: false })
  req.end(opts.body)
  const [res] = await once(req, 'response') as [import('node:http').IncomingMessage]
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }
}

export interface SocketResponse {
  statusLine: string
  status: number
  /** Header names lower-cased, every occurrence kept. */
  headers: Array<[string, string]>
  /** Everything after the head, as sent (chunk framing included). */
  rest: Buffer
}

/** Writes `head` (and `body`) to a fresh socket, reads until the server closes it, parses the head. */
export async function socketExchange (port: number, head: string, body?: Buffer): Promise<SocketResponse> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(head)
  if (body !== undefined) socket.write(body)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'end')
  socket.destroy()
  const all = Buffer.concat(chunks)
  const end = all.indexOf('\r\n\r\n')
  if (end === -1) throw new Error(`no response head in ${JSON.stringify(all.toString('latin1').slice(0, 200))}`)
  const lines = all.subarray(0, end).toString('latin1').split('\r\n')
  const statusLine = lines.shift()!
  const headers = lines.map(l => {
    const i = l.indexOf(':')
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as [string, string]
  })
  return { statusLine, status: Number(statusLine.split(' ')[1]), headers, rest: all.subarray(end + 4) }
}

export function sha256 (b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex')
}

/** The parsed JSON body of a fetch response. */
export async function jsonOf (res: Response): Promise<any> {
  return await res.json()
}
