/**
 * A private `redis-server` for tests: its own process on a free port, never the
 * machine's Redis on 6379. Readiness is read from the server's own log
 * ("Ready to accept connections"), so tests never sleep waiting for it.
 *
 * @example
 * const redis = await startRedis()
 * t.after(() => redis.stop())
 * const client = new Redis(redis.url)
 * await redis.kill()      // SIGKILL: simulates a crash
 * await redis.restart()   // same port, empty dataset
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The machine's own Redis; a test server never takes this port. */
const RESERVED_PORT = 6379
const READY_LINE = 'Ready to accept connections'
const HOST = '127.0.0.1'

export interface StartRedisOptions {
  /** A fixed port; by default a free one is chosen. MUST NOT be 6379. */
  port?: number
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[]
  /**
   * How long to wait for "Ready to accept connections", in milliseconds.
   * @default 10000
   */
  startTimeoutMs?: number
  /**
   * The binary to run.
   * @default process.env.REDIS_SERVER_BIN ?? "redis-server"
   */
  bin?: string
}

export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** A random key prefix for this server's tests: `test-<uuid>`. */
  readonly prefix: string
  /** Whether the server process is running now. */
  readonly running: boolean
  /** The server's pid, while it runs. */
  readonly pid: number | undefined
  /** Graceful stop (SIGTERM, then SIGKILL after 5 s); idempotent; resolves when the process has exited. */
  stop: () => Promise<void>
  /** Crash it: SIGKILL; resolves when the process has exited. */
  kill: () => Promise<void>
  /** Starts it again on the same port (stopping it first if it still runs); resolves when it is ready. The dataset is empty. */
  restart: () => Promise<void>
  /** The server's recent log output, for failure messages. */
  log: () => string
}

const live = new Set<ChildProcess>()
let cleanupInstalled = false

function killAllNow (): void {
  for (const child of live) {
    try { child.kill('SIGKILL') } catch { /* already gone */ }
  }
  live.clear()
}

/** Never leave a redis-server behind when the test process ends, however it ends. */
function installCleanup (): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.once('exit', killAllNow)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow()
      // Re-raise only when nobody else handles the signal, to keep Node's default (exit).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.once(signal, onSignal)
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago (never 6379). */
export async function freePort (): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.unref()
      srv.on('error', reject)
      srv.listen(0, HOST, () => {
        const addr = srv.address()
        const p = typeof addr === 'object' && addr !== null ? addr.port : 0
        srv.close(() => resolve(p))
      })
    })
    if (port !== 0 && port !== RESERVED_PORT) return port
  }
}

class AddressInUse extends Error {}

interface Running { child: ChildProcess, exited: Promise<void> }

function launch (bin: string, port: number, dir: string, args: string[], timeoutMs: number, keepLog: (chunk: string) => void): Promise<Running> {
  return new Promise<Running>((resolve, reject) => {
    const child = spawn(bin, [
      '--port', String(port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', dir,
      '--logfile', '',
      ...args
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(child)
    let output = ''
    let ready = false
    const exited = new Promise<void>(resolve => {
      child.once('exit', () => { live.delete(child); resolve() })
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`redis-server did not become ready within ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8')
      keepLog(text)
      if (ready) return
      output += text
      if (output.includes(READY_LINE)) {
        ready = true
        clearTimeout(timer)
        output = ''
        resolve({ child, exited })
      }
    }
    // Keep draining both pipes for the life of the server, or it blocks on a full pipe.
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', (err) => {
      clearTimeout(timer)
      live.delete(child)
      reject(new Error(`could not start ${bin}: ${err.message} (is redis-server on PATH?)`))
    })
    child.once('exit', (code, signal) => {
      if (ready) return
      clearTimeout(timer)
      if (/already in use/i.test(output)) reject(new AddressInUse(output))
      else reject(new Error(`redis-server exited before it was ready (code ${String(code)}, signal ${String(signal)}):\n${output}`))
    })
  })
}

/** Starts a private `redis-server` on a free port and resolves once it accepts connections. */
export async function startRedis (options: StartRedisOptions = {}): Promise<RedisServer> {
  if (options.port === RESERVED_PORT) throw new Error('startRedis: port 6379 is the machine\'s Redis; tests must not use it')
  installCleanup()
  const bin = options.bin ?? process.env.REDIS_SERVER_BIN ?? 'redis-server'
  const args = options.args ?? []
  const timeoutMs = options.startTimeoutMs ?? 10_000
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-'))
  let recent = ''
  const keepLog = (chunk: string): void => { recent = (recent + chunk).slice(-8192) }

  let port = options.port ?? 0
  let current: Running | undefined
  for (let attempt = 0; current === undefined; attempt++) {
    if (options.port === undefined) port = await freePort()
    try {
      current = await launch(bin, port, dir, args, timeoutMs, keepLog)
    } catch (err) {
      // Another process took the port between freePort() and bind: pick another.
      if (err instanceof AddressInUse && options.port === undefined && attempt < 10) continue
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }

  let stopping: Promise<void> | undefined
  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const r = current
    if (r === undefined) return
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill(signal)
      if (signal !== 'SIGKILL') {
        const force = setTimeout(() => r.child.kill('SIGKILL'), 5000)
        force.unref()
        await r.exited
        clearTimeout(force)
      }
    }
    await r.exited
    if (current === r) current = undefined
  }

  const server: RedisServer = {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    prefix: `test-${randomUUID()}`,
    get running () { return current !== undefined && current.child.exitCode === null && current.child.signalCode === null },
    get pid () { return current?.child.pid },
    stop: async () => {
      stopping ??= (async () => {
        await terminate('SIGTERM')
        rmSync(dir, { recursive: true, force: true })
      })()
      return await stopping
    },
    kill: async () => { await terminate('SIGKILL') },
    restart: async () => {
      if (stopping !== undefined) throw new Error('startRedis: restart() after stop()')
      await terminate('SIGTERM')
      current = await launch(bin, port, dir, args, timeoutMs, keepLog)
    },
    log: () => recent
  }
  return server
}
