import { mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { pino, type Logger } from 'pino'
import type { GatewayConfig } from './config/types.js'

/**
 * Lines are written in chunks of at least this many characters… Each
 * asynchronous write is a trip through libuv's thread pool, ~20–35 µs of CPU
 * however small the chunk: one per ~440 access lines at 64 KiB, one per ~27
 * at 4 KiB (in-process, 1.2–1.4 µs a line against 1.35–2.6 µs).
 */
export const CHUNK = 65536
/** …and at least this often (ms), on `logger.flush()` (the gateway's close) and at exit. */
export const FLUSH_MS = 250

/**
 * What LineBuffer writes to: sonic-boom (`pino.destination`) in its buffer
 * mode, or anything with these methods. Like sonic-boom, it emits 'write' with
 * the number of bytes written as each write completes.
 */
export interface Destination {
  write: (chunk: Buffer) => boolean
  flush: (cb?: (err?: Error) => void) => void
  flushSync: () => void
  once: (event: 'close', fn: () => void) => unknown
  on: (event: 'write', fn: (n: number) => void) => unknown
}

/**
 * Gathers log lines into one write of at least 64 KiB: one write per line
 * (each a trip through libuv's thread pool) measured ~25 µs per request on
 * the passthrough benchmark. The writing itself is sonic-boom's
 * (`pino.destination`), handed whole chunks, asynchronously: a slow disk or
 * a stalled stdout reader must not stop the event loop (a synchronous write
 * costs ~3 µs to /dev/null against ~20–35 µs, but blocks on anything slower). Not
 * sonic-boom's own `minLength`: it appends each line to its last pending
 * string and measures that string with `Buffer.byteLength`, which flattens
 * the whole pending chunk on every line (~2.9 KB of garbage a line, in a
 * sampling heap profile). Chunks are handed over as bytes, sonic-boom in its
 * buffer mode: handed a string, it encodes each chunk twice (`fs.write`
 * copies it out, then `releaseWritingBuf` runs `Buffer.from` on it again to
 * count what was written), where an ASCII chunk here is one latin1 copy.
 */
export class LineBuffer {
  #parts: string[] = []
  #length = 0
  /** Every pending line is ASCII (`writeAscii`), so the chunk's bytes are a latin1 copy of it. */
  #ascii = true
  /** Bytes handed to the destination, and bytes it reported written ('write' events). */
  #handed = 0
  #written = 0
  /** flush() callbacks waiting for the destination to write what it was handed. */
  #waiting: Array<() => void> = []
  readonly #out: Destination
  readonly #timer: NodeJS.Timeout

  constructor (out: Destination) {
    this.#out = out
    out.on('write', (n: number) => {
      this.#written += n
      if (this.#written >= this.#handed && this.#waiting.length > 0) {
        const waiting = this.#waiting
        this.#waiting = []
        for (const cb of waiting) cb()
      }
    })
    this.#timer = setInterval(() => { this.#drain() }, FLUSH_MS)
    this.#timer.unref()
    open.add(this)
    out.once('close', () => { clearInterval(this.#timer); open.delete(this) })
  }

  write (line: string): boolean {
    this.#ascii = false
    return this.writeAscii(line)
  }

  /**
   * `write` for a line the caller knows to be ASCII: the chunk it lands in is
   * then copied out as latin1, not encoded as UTF-8, which walks the whole
   * 64 KiB string first (`Buffer.byteLength` on the chunk measured ~850
   * instructions per access line under callgrind).
   */
  writeAscii (line: string): boolean {
    this.#parts.push(line)
    this.#length += line.length
    if (this.#length >= CHUNK) this.#drain()
    return true
  }

  /**
   * pino's `logger.flush(cb)`: `cb` runs once everything written so far is on
   * its way to the file (the gateway's close waits for it). sonic-boom's own
   * flush calls back at once when it has no `minLength`, while its write may
   * still be in flight, so the wait is on its 'write' events.
   */
  flush (cb?: (err?: Error) => void): void {
    this.#drain()
    if (cb === undefined) return
    if (this.#written >= this.#handed) cb()
    else this.#waiting.push(cb)
  }

  flushSync (): void {
    this.#drain()
    this.#out.flushSync()
  }

  #drain (): void {
    if (this.#length === 0) return
    const chunk = this.#parts.length === 1 ? this.#parts[0]! : this.#parts.join('')
    this.#parts = []
    this.#length = 0
    const bytes = Buffer.from(chunk, this.#ascii ? 'latin1' : 'utf8')
    this.#ascii = true
    this.#handed += bytes.length
    this.#out.write(bytes)
  }
}

/** Buffers with lines to write when the process exits (one listener for all of them). */
const open = new Set<LineBuffer>()
process.on('exit', () => { for (const b of open) b.flushSync() })

/** pino JSON logs: to stdout, or to `logging.destination` (asynchronous writes of buffered chunks). */
export function createLogger (config: GatewayConfig): Logger {
  const level = config.silent === true ? 'silent' : config.logging?.level ?? 'info'
  const dest = config.logging?.destination
  let fd = 1
  if (dest !== undefined) {
    // Opened here, synchronously: a destination still opening when the process exits (a config
    // refused at start) would make the final flush throw "sonic boom is not ready yet".
    mkdirSync(dirname(dest), { recursive: true })
    fd = openSync(dest, 'a')
  }
  return pino({ level, base: { name: 'switchyard' } }, new LineBuffer(pino.destination({ fd, sync: false, contentMode: 'buffer' }) as unknown as Destination))
}

/** Writes one access-log line: what `completed` logs for every answered request. */
export type AccessLog = (id: string, method: string, url: string, status: number, ms: number) => void

/** For 0 ≤ n < 1000: the decimals of n / 1000 as JavaScript prints them ('', '.005', '.12', '.5'). */
const MS_FRACTION: readonly string[] = Array.from({ length: 1000 }, (_, n) => n === 0 ? '' : `.${String(n).padStart(3, '0')}`.replace(/0+$/, ''))

/**
 * Characters outside printable ASCII (Node reads the request line as latin1, so
 * a URL may hold U+0080–U+00FF). Control characters count too: JSON.stringify
 * escapes them to ASCII, but they are rare enough to take the byte count.
 */
const NON_ASCII = /[^\t\n\r\x20-\x7e]/

/**
 * The per-request "request completed" line, written straight to the logger's
 * destination: the same JSON pino writes for `log.info({ reqId, method, url,
 * status, ms }, 'request completed')` (level, time, the logger's bindings, the
 * fields, msg), without pino's general-purpose serializer, which measured
 * ~13 µs and ~3 KB of garbage per request on the passthrough benchmark. The
 * level is checked on every call, so `log.level = 'warn'` silences it.
 * `id` is a request id (ASCII that needs no JSON escaping, see requestId);
 * `method` is an HTTP token; `url` is escaped. `ms` is rounded to the
 * microsecond: printing a double's every digit cost ~0.7 µs a line, and it is
 * printed as whole milliseconds and a looked-up fraction, the digits
 * `Math.round(ms * 1000) / 1000` prints, without converting a double (~1k
 * instructions a line under callgrind).
 */
export function accessLog (log: Logger): AccessLog {
  const stream = (log as unknown as Record<symbol, { write: (line: string) => unknown, writeAscii?: (line: string) => unknown }>)[pino.symbols.streamSym]!
  const bindings = (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym]!
  const ascii = stream instanceof LineBuffer && !NON_ASCII.test(bindings)
  // The time as text, made once per millisecond: Date.now() is past the small-integer range, so
  // each conversion to text is a full double-to-string (FastDtoa, ~500 instructions under callgrind).
  let now = 0
  let nowText = '0'
  return (id, method, url, status, ms) => {
    if (log.levelVal > 30) return
    const t = Date.now()
    if (t !== now) { now = t; nowText = String(t) }
    const us = Math.round(ms * 1000)
    const frac = us % 1000
    const line = `{"level":30,"time":${nowText}${bindings},"reqId":"${id}","method":"${method}","url":${JSON.stringify(url)},"status":${status},"ms":${(us - frac) / 1000}${MS_FRACTION[frac]},"msg":"request completed"}\n`
    if (ascii && !NON_ASCII.test(url)) (stream as LineBuffer).writeAscii(line)
    else stream.write(line)
  }
}
