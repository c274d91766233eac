/**
 * Child processes of the harness: spawn, wait for a line, stop. Every child
 * is registered, and all of them are stopped on exit, on Ctrl-C, on SIGTERM
 * and on an uncaught error, so a run never leaves a server behind.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { fileURLToPath } from 'node:url'

/** The repository root (bench/lib/ → ../..). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const TAIL_BYTES = 16 * 1024

export interface Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly pid: number
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>
  /** True once the process has exited. */
  readonly isDone: () => boolean
  /** The last 16 KiB of stdout and stderr. */
  readonly stdoutTail: () => string
  readonly stderrTail: () => string
  /** Calls `fn` for every complete stdout line from now on; returns an unsubscribe. */
  readonly onLine: (fn: (line: string) => void) => () => void
}

const children = new Set<Child>()

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** `sut`: the process under test (gateway or anchor); `rest`: backend, Redis, service, load generator. */
  role?: 'sut' | 'rest'
}

/**
 * CPU pinning (taskset): the process under test gets cores of its own, and
 * everything else shares the others, so a target's req/s follows its own cost
 * per request rather than how the scheduler happened to share the cores.
 */
let pinning: { sut: string, rest: string } | undefined
export function setPinning (p: { sut: string, rest: string } | undefined): void { pinning = p }

export function spawnChild (name: string, command: string, args: string[], options: SpawnOptions = {}): Child {
  if (pinning !== undefined && options.role !== undefined) {
    args = ['-c', pinning[options.role], command, ...args]
    command = 'taskset'
  }
  const proc = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    // stdin stays a pipe: our own children exit when it closes (lib/child.ts).
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  let partial = ''
  let done = false
  const listeners = new Set<(line: string) => void>()
  proc.stdout!.setEncoding('utf8')
  proc.stderr!.setEncoding('utf8')
  proc.stdout!.on('data', (chunk: string) => {
    out = (out + chunk).slice(-TAIL_BYTES)
    partial += chunk
    let i: number
    while ((i = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, i).replace(/\r$/, '')
      partial = partial.slice(i + 1)
      for (const fn of listeners) fn(line)
    }
    if (partial.length > TAIL_BYTES) partial = partial.slice(-TAIL_BYTES)
  })
  proc.stderr!.on('data', (chunk: string) => { err = (err + chunk).slice(-TAIL_BYTES) })
  proc.stdin!.on('error', () => {})
  const exited = new Promise<number | string>(resolve => {
    proc.once('error', (e) => { err += `\n${e.message}`; done = true; resolve('spawn-error') })
    proc.once('exit', (code, signal) => { done = true; resolve(code ?? signal ?? 'unknown') })
  })
  const child: Child = {
    name,
    proc,
    pid: proc.pid ?? -1,
    exited,
    isDone: () => done,
    stdoutTail: () => out,
    stderrTail: () => err,
    onLine: (fn) => { listeners.add(fn); return () => listeners.delete(fn) }
  }
  children.add(child)
  exited.then(() => children.delete(child), () => {})
  return child
}

/** A node child running a TypeScript file of this repository through tsx. */
export function spawnTs (name: string, file: string, args: string[] = [], options: SpawnOptions = {}): Child {
  return spawnChild(name, process.execPath, ['--import', 'tsx', file, ...args], options)
}

/** The last non-empty lines of a child's stderr (or stdout), for a skip reason. */
export function failureReason (child: Child, maxChars = 400): string {
  const text = (child.stderrTail().trim() !== '' ? child.stderrTail() : child.stdoutTail()).trim()
  const lines = text.split('\n').map(l => l.trim()).filter(l => l !== '')
  const picked = lines.filter(l => /not supported yet/i.test(l))
  const chosen = (picked.length > 0 ? picked : lines.slice(-3)).join('; ')
  return chosen.length > maxChars ? chosen.slice(0, maxChars) + '…' : chosen || '(no output)'
}

/** Waits for a stdout line matching `re`; rejects when the child exits first or on timeout. */
export async function waitForLine (child: Child, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const already = child.stdoutTail().split('\n').map(l => re.exec(l)).find(m => m !== null)
  if (already !== undefined && already !== null) return already
  return await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`${child.name}: no "${re.source}" line after ${timeoutMs} ms (${failureReason(child)})`)) }, timeoutMs)
    const off = child.onLine((line) => {
      const m = re.exec(line)
      if (m !== null) { cleanup(); resolve(m) }
    })
    const onExit = (code: number | string): void => { cleanup(); reject(new Error(`${child.name} exited (${code}): ${failureReason(child)}`)) }
    child.exited.then(onExit, () => {})
    function cleanup (): void { clearTimeout(timer); off() }
  })
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild (child: Child, graceMs = 3000): Promise<void> {
  if (child.isDone()) return
  child.proc.stdin?.end()
  child.proc.kill('SIGTERM')
  const timer = setTimeout(() => { if (!child.isDone()) child.proc.kill('SIGKILL') }, graceMs)
  await child.exited
  clearTimeout(timer)
}

export async function stopAll (): Promise<void> {
  await Promise.all([...children].map(async c => await stopChild(c)))
}

let installed = false
/** Stops every child on exit, Ctrl-C, SIGTERM and uncaught errors. */
export function installCleanup (onSignal?: () => void): void {
  if (installed) return
  installed = true
  process.on('exit', () => { for (const c of children) if (!c.isDone()) c.proc.kill('SIGKILL') })
  const bail = (code: number) => (reason?: unknown): void => {
    if (reason instanceof Error) process.stderr.write(`bench: ${reason.stack ?? reason.message}\n`)
    onSignal?.()
    const force = setTimeout(() => process.exit(code), 5000)
    force.unref()
    stopAll().finally(() => process.exit(code))
  }
  process.once('SIGINT', () => { process.stderr.write('\nbench: interrupted, stopping children…\n'); bail(130)() })
  process.once('SIGTERM', bail(143))
  process.on('uncaughtException', bail(1))
  process.on('unhandledRejection', bail(1))
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** Resolves once a TCP connection to 127.0.0.1:port succeeds; rejects after `timeoutMs`. */
export async function waitForPort (port: number, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const sock = connect(port, '127.0.0.1')
      sock.once('connect', () => { sock.destroy(); resolve(true) })
      sock.once('error', () => { sock.destroy(); resolve(false) })
    })
    if (ok) return
    if (child?.isDone() === true) throw new Error(`${child.name} exited: ${failureReason(child)}`)
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
