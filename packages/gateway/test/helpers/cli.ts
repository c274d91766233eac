/**
 * The `switchyard` CLI as a child process: `start` with `--port 0` prints
 * `listening on http://127.0.0.1:<port>`, which is parsed; stop = SIGTERM and
 * wait for the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url))
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

/** Longest a CLI child may take to start or finish before the helper gives up (a guard, never a wait). */
const GUARD_MS = 30_000

export interface CliResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface RunningCli {
  url: string
  port: number
  pid: number
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** SIGTERM, then the exit. */
  stop: () => Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

function spawnCli (args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
}

/** Runs a CLI command to completion. */
export async function runCli (args: string[]): Promise<CliResult> {
  const child = spawnCli(args)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const guard = setTimeout(() => child.kill('SIGKILL'), GUARD_MS)
  const [code, signal] = await once(child, 'close') as [number | null, NodeJS.Signals | null]
  clearTimeout(guard)
  return { code, signal, stdout, stderr }
}

/** `switchyard start -c <file> --port 0 [...extra]`, resolved once it prints its address. */
export async function startCli (configFile: string, extra: string[] = []): Promise<RunningCli> {
  const child = spawnCli(['start', '-c', configFile, '--port', '0', ...extra])
  let stdout = ''
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const url = await new Promise<string>((resolve, reject) => {
    const guard = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`switchyard start did not print its address\nstdout: ${stdout}\nstderr: ${stderr}`)) }, GUARD_MS)
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      const m = /listening on (http:\/\/[^\s]+)/.exec(stdout)
      if (m !== null) { clearTimeout(guard); resolve(m[1]!) }
    })
    exited.then(([code, signal]) => {
      clearTimeout(guard)
      reject(new Error(`switchyard start exited (${code ?? signal}) before listening\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, () => {})
  })
  let stopped: Promise<{ code: number | null, signal: NodeJS.Signals | null }> | undefined
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid!,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop () {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        const guard = setTimeout(() => child.kill('SIGKILL'), GUARD_MS)
        const [code, signal] = await exited
        clearTimeout(guard)
        return { code, signal }
      })()
      return await stopped
    }
  }
}
