/**
 * PRODUCT §3.1: a response never carries both Content-Length and
 * Transfer-Encoding (read from a raw socket), and a single-service route
 * streams 200 MB both ways in constant memory (gateway RSS growth < 64 MB).
 */
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { startBackend, type Backend } from './helpers/backend.js'
import { startGateway, type TestGateway } from './helpers/gateway.js'
import { socketExchange } from './helpers/client.js'
import { startCli } from './helpers/cli.js'
import type { GatewayConfig } from '../src/config/types.js'

const CHUNKED_BODY = '{"part":1,' + '"part2":2,' + '"end":true}'
const LENGTH_BODY = JSON.stringify({ fixed: 'length', n: 42 })

describe('no response carries both Content-Length and Transfer-Encoding', () => {
  let chunked: Backend
  let length: Backend
  let smuggler: ReturnType<typeof createNetServer>
  const smugglerSockets = new Set<Socket>()
  let gw: TestGateway
  before(async () => {
    chunked = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"part":1,')
      res.write('"part2":2,')
      res.end('"end":true}')
    })
    length = await startBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(LENGTH_BODY)) })
      res.end(LENGTH_BODY)
    })
    // A raw backend that answers with both headers (a smuggling attempt).
    smuggler = createNetServer(socket => {
      smugglerSockets.add(socket)
      socket.on('close', () => smugglerSockets.delete(socket))
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n')
      })
    })
    smuggler.listen(0, '127.0.0.1')
    await once(smuggler, 'listening')
    const sport = (smuggler.address() as AddressInfo).port
    const svc = (url: string): Record<string, unknown> => ({ type: 'http', url })
    gw = await startGateway({
      http: {
        routes: {
          '/stream-chunked': { GET: { services: { a: svc(chunked.url) } } },
          '/stream-length': { GET: { services: { a: svc(length.url) } } },
          '/merged-chunked': { GET: { services: { a: svc(chunked.url), b: svc(length.url) } } },
          '/merged-length': { GET: { services: { a: svc(length.url), b: { ...svc(length.url), mergeField: 'b' } } } },
          '/buffered-chunked': { GET: { services: { a: svc(chunked.url), b: { ...svc(length.url), merge: false } } } },
          '/stream-smuggle': { GET: { services: { a: svc(`http://127.0.0.1:${sport}`) } } },
          '/merged-smuggle': { GET: { services: { a: svc(`http://127.0.0.1:${sport}`), b: svc(length.url) } } }
        }
      }
    } as unknown as GatewayConfig)
  })
  after(async () => {
    await gw.close()
    await chunked.close()
    await length.close()
    for (const s of smugglerSockets) s.destroy()
    await new Promise<void>(resolve => smuggler.close(() => resolve()))
  })

  const expected: Record<string, unknown> = {
    '/stream-chunked': JSON.parse(CHUNKED_BODY),
    '/stream-length': JSON.parse(LENGTH_BODY),
    '/merged-chunked': { ...JSON.parse(CHUNKED_BODY), ...JSON.parse(LENGTH_BODY) },
    '/merged-length': { ...JSON.parse(LENGTH_BODY), b: JSON.parse(LENGTH_BODY) },
    '/buffered-chunked': JSON.parse(CHUNKED_BODY)
  }

  for (const path of ['/stream-chunked', '/stream-length', '/merged-chunked', '/merged-length', '/buffered-chunked', '/stream-smuggle', '/merged-smuggle']) {
    test(path, async () => {
      const port = Number(new URL(gw.url).port)
      for (const method of ['GET', 'HEAD']) {
        const r = await socketExchange(port, `${method} ${path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n`)
        const names = r.headers.map(([n]) => n)
        const hasLength = names.includes('content-length')
        const hasTe = names.includes('transfer-encoding')
        assert.ok(!(hasLength && hasTe), `${method} ${path}: both headers in ${r.statusLine}\n${names.join(', ')}`)
        assert.ok(names.filter(n => n === 'content-length').length <= 1, `${method} ${path}: repeated content-length`)
        if (method === 'GET' && hasLength) assert.equal(r.rest.length, Number(r.headers.find(([n]) => n === 'content-length')![1]), `${method} ${path}: body length`)
        if (method === 'HEAD') assert.equal(r.rest.length, 0, `${method} ${path}: a HEAD answer has no body`)
        if (path.endsWith('smuggle')) assert.ok(r.status === 200 || r.status === 502, `${path}: ${r.statusLine}`)
        else assert.equal(r.status, 200, `${method} ${path}`)
      }
      // Node's fetch reads every response whole.
      const res = await fetch(gw.url + path)
      const text = await res.text()
      if (expected[path] !== undefined) assert.deepEqual(JSON.parse(text), expected[path])
      else if (res.status === 200) assert.deepEqual(JSON.parse(text), { a: 1 })
    })
  }
})

function procStatus (pid: number, text: string, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

async function memory (pid: number): Promise<{ rss: number, hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  return { rss: procStatus(pid, text, 'VmRSS'), hwm: procStatus(pid, text, 'VmHWM') }
}

/** Resets the peak RSS of `pid` (Linux clear_refs 5); false when not allowed. */
async function resetPeak (pid: number): Promise<boolean> {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

async function upload (url: string, size: number, chunk: number): Promise<{ status: number, body: string, sha: string }> {
  const hash = createHash('sha256')
  let left = size
  const source = Readable.from((function * () {
    while (left > 0) {
      const b = randomBytes(Math.min(chunk, left))
      left -= b.length
      hash.update(b)
      yield b
    }
  })())
  const u = new URL(url)
  const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } })
  const response = once(req, 'response') as Promise<[IncomingMessage]>
  await pipeline(source, req)
  const [res] = await response
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  return { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), sha: hash.digest('hex') }
}

const MB = 1024 * 1024
const BIG = 200 * MB

describe('streaming passthrough in constant memory', { timeout: 90_000 }, () => {
  let dir: string
  let backend: Backend
  let sentSha = ''
  let gateway: Awaited<ReturnType<typeof startCli>>
  before(async () => {
    backend = await startBackend(async (req, res) => {
      if (req.method === 'POST') {
        const hash = createHash('sha256')
        let bytes = 0
        for await (const c of req) { bytes += (c as Buffer).length; hash.update(c as Buffer) }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ bytes, sha: hash.digest('hex') }))
        return
      }
      const size = Number(new URL(req.url!, 'http://x').searchParams.get('size'))
      const hash = createHash('sha256')
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
      let left = size
      while (left > 0) {
        const b = randomBytes(Math.min(256 * 1024, left))
        left -= b.length
        hash.update(b)
        if (!res.write(b)) await once(res, 'drain')
      }
      sentSha = hash.digest('hex')
      res.end()
    }, { raw: true })
    dir = await mkdtemp(join(tmpdir(), 'switchyard-stream-'))
    const config = join(dir, 'gateway.config.cjs')
    await writeFile(config, `module.exports = ${JSON.stringify({
      logging: { level: 'silent' },
      http: {
        routes: {
          '/upload': { POST: { bodyLimitBytes: 300 * MB, services: { up: { type: 'http', url: `${backend.url}/upload` } } } },
          '/download': { GET: { services: { down: { type: 'http', url: `${backend.url}/download` } } } }
        }
      }
    }, null, 2)}\n`)
    gateway = await startCli(config)
  })
  after(async () => {
    await gateway?.stop()
    await backend?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  test('200 MB up and 200 MB down through one service, gateway RSS growth under 64 MB', async (t) => {
    // Warm up: every code path loaded and every pool connected before the baseline.
    for (let i = 0; i < 3; i++) {
      const up = await upload(`${gateway.url}/upload`, 4 * MB, 64 * 1024)
      assert.equal(up.status, 200)
      const down = await fetch(`${gateway.url}/download?size=${4 * MB}`)
      assert.equal((await down.arrayBuffer()).byteLength, 4 * MB)
    }
    const base = await memory(gateway.pid)
    const peakReset = await resetPeak(gateway.pid)
    // Sampling as a second measure, in case the peak cannot be reset here.
    let sampled = base.rss
    const sampler = setInterval(() => {
      memory(gateway.pid).then(m => { sampled = Math.max(sampled, m.rss) }, () => {})
    }, 50)
    try {
      const up = await upload(`${gateway.url}/upload`, BIG, 64 * 1024)
      assert.equal(up.status, 200, up.body)
      const got = JSON.parse(up.body) as { bytes: number, sha: string }
      assert.equal(got.bytes, BIG)
      assert.equal(got.sha, up.sha)

      const down = await fetch(`${gateway.url}/download?size=${BIG}`)
      assert.equal(down.status, 200)
      const hash = createHash('sha256')
      let bytes = 0
      for await (const c of down.body as unknown as AsyncIterable<Uint8Array>) { bytes += c.length; hash.update(c) }
      assert.equal(bytes, BIG)
      assert.equal(hash.digest('hex'), sentSha)
    } finally {
      clearInterval(sampler)
    }
    const end = await memory(gateway.pid)
    const peak = Math.max(sampled, end.rss, peakReset ? end.hwm : 0)
    const growth = peak - base.rss
    t.diagnostic(`gateway RSS: base ${(base.rss / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB (peak reset: ${peakReset})`)
    assert.ok(growth < 64 * MB, `gateway RSS grew by ${(growth / MB).toFixed(1)} MB (base ${(base.rss / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB)`)

    const { code } = await gateway.stop()
    assert.equal(code, 0)
  })
})
