/**
 * The Redis service behind the `/redis` (pub/sub) and `/stream` (Redis
 * Streams) scenarios, written with the SDK: `serve()` from @switchyard/service.
 * It answers every request with ~100 bytes of JSON.
 *
 * When the SDK cannot be loaded or started, pub/sub falls back to a plain
 * ioredis responder written as a Prism-era service would be (PRODUCT §1.2),
 * so the bare pub/sub anchor stays measurable; streams have no fallback.
 * Whatever was used is reported on the ready line, and the harness prints it.
 *
 * Usage: node --import tsx bench/redis-service.ts --redis redis://127.0.0.1:PORT [--modes pubsub,stream]
 * Prints: `ready {"pubsub":"sdk"|"plain ioredis"|null,"stream":"sdk"|null,"notes":[...]}`
 */
import { Redis } from 'ioredis'
import { argValue, exitWithParent, requiredArg } from './lib/child.js'
import { REDIS_PREFIX, REQUEST_CHANNEL, SERVICE_NAME } from './lib/constants.js'

/** The SDK's API as this file expects it (PRODUCT §5.1). */
interface ServeOptions {
  redis: string
  service: string
  channel?: string
  stream?: boolean
  prefix?: string
  handler: (request: unknown) => Promise<{ status: number, body: unknown }>
}
interface Served { close: () => Promise<void> | void }
interface Sdk { serve: (options: ServeOptions) => Served | Promise<Served> }

const url = requiredArg('redis')
const modes = new Set((argValue('modes') ?? 'pubsub,stream').split(','))
const BODY = { id: 'bench-0001', name: 'switchyard benchmark payload', tags: ['a', 'b', 'c'], price: 12.5, ok: true }
const handler = async (): Promise<{ status: number, body: unknown }> => ({ status: 200, body: BODY })

const status: { pubsub: string | null, stream: string | null, notes: string[] } = { pubsub: null, stream: null, notes: [] }
const closers: Array<() => Promise<void> | void> = []
const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200)

let sdk: Sdk | undefined
try {
  // A variable specifier: the SDK may not exist yet, and the type check must not depend on it.
  const specifier = '@switchyard/service'
  const mod = await import(specifier) as Partial<Sdk>
  if (typeof mod.serve !== 'function') throw new Error('@switchyard/service has no serve() export')
  sdk = mod as Sdk
} catch (err) {
  status.notes.push(`SDK unavailable (${reason(err)})`)
}

async function start (mode: 'pubsub' | 'stream'): Promise<void> {
  if (sdk === undefined) return
  try {
    const served = await sdk.serve({
      redis: url,
      service: SERVICE_NAME,
      prefix: REDIS_PREFIX,
      handler,
      ...(mode === 'pubsub' ? { channel: REQUEST_CHANNEL } : { stream: true })
    })
    closers.push(() => served.close())
    status[mode] = 'sdk'
  } catch (err) {
    status.notes.push(`SDK serve() for ${mode} failed (${reason(err)})`)
  }
}

/** A Prism-style service: subscribe, read `{type, id, responseChannel}`, publish `{id, service, response}`. */
async function startPlainPubsub (): Promise<void> {
  const sub = new Redis(url, { lazyConnect: true })
  const pub = new Redis(url, { lazyConnect: true })
  await Promise.all([sub.connect(), pub.connect()])
  await sub.subscribe(REQUEST_CHANNEL)
  sub.on('message', (_channel: string, message: string) => {
    let msg: { type?: unknown, id?: unknown, responseChannel?: unknown }
    try { msg = JSON.parse(message) } catch { return }
    if (msg.type !== 'request' || typeof msg.responseChannel !== 'string') return
    pub.publish(msg.responseChannel, JSON.stringify({ id: msg.id, service: SERVICE_NAME, response: { status: 200, body: BODY } })).catch(() => {})
  })
  closers.push(() => { sub.disconnect(); pub.disconnect() })
  status.pubsub = 'plain ioredis'
}

if (modes.has('pubsub')) await start('pubsub')
if (modes.has('stream')) await start('stream')
if (modes.has('pubsub') && status.pubsub === null) {
  try { await startPlainPubsub() } catch (err) { status.notes.push(`plain pub/sub responder failed (${reason(err)})`) }
}

exitWithParent(async () => { await Promise.allSettled(closers.map(async c => { await c() })) })
process.stdout.write(`ready ${JSON.stringify(status)}\n`)
