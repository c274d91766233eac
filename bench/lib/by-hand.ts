/**
 * What the by-hand tools (bench/alloc.ts, bench/cpuprof.ts) share: an
 * inspector session over a target's WebSocket, and wrk as their load.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { WebSocket } from 'undici'

const run = promisify(execFile)

/** One inspector session over the target's WebSocket: `send` resolves with the command's result. */
export async function inspector (port: number): Promise<{ send: (method: string, params?: object) => Promise<Record<string, unknown>>, close: () => void }> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<{ webSocketDebuggerUrl: string }>
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => { ws.addEventListener('open', resolve); ws.addEventListener('error', reject) })
  let id = 0
  const pending = new Map<number, (result: Record<string, unknown>) => void>()
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number, result?: Record<string, unknown> }
    if (m.id !== undefined) { pending.get(m.id)?.(m.result ?? {}); pending.delete(m.id) }
  })
  return {
    send: async (method, params = {}) => await new Promise((resolve) => { const i = ++id; pending.set(i, resolve); ws.send(JSON.stringify({ id: i, method, params })) }),
    close: () => { ws.close() }
  }
}

/** wrk at 50 connections for `s` seconds (on the CPUs `cpus` names, with taskset); resolves with the number of requests it made. */
export async function wrk (url: string, s: number, headers: Record<string, string>, cpus?: string): Promise<number> {
  const args = ['-t1', '-c50', `-d${s}s`, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url]
  const { stdout } = cpus === undefined ? await run('wrk', args) : await run('taskset', ['-c', cpus, 'wrk', ...args])
  const m = /(\d+) requests in/.exec(stdout)
  if (m === null) throw new Error(`wrk printed no request count:\n${stdout}`)
  return Number(m[1])
}
