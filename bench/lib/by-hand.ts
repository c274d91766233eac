/**
 * What the by-hand tools (bench/alloc.ts, bench/cpuprof.ts, bench/syscalls.ts)
 * share: an inspector session over a target's WebSocket, wrk as their load,
 * and the side-by-side tools' loop over targets.
 */
import { execFile } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { promisify } from 'node:util'
import { WebSocket } from 'undici'
import { cpuSplit } from './options.js'
import { installCleanup, setPinning, spawnChild, stopChild, waitForLine, type Child } from './procs.js'
import { startHarness, which } from './setup.js'
import { targetByHand } from './targets.js'

const LISTENING = /listening on (https?:\/\/\S+)/

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

/** One target of `sideBySide`, listening and warmed up. */
export interface ByHandRun {
  /** The target as named on the command line (`gateway`, `gateway:/jwt`, `floor`…). */
  readonly spec: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly pid: number
  /** The CPUs wrk runs on (taskset), when pinned. */
  readonly loadCpus: string | undefined
}

export interface SideBySideOptions<T> {
  /** Targets in order; `gateway:/route` names the gateway's route, otherwise `route`. */
  targets: readonly string[]
  route: string
  warmupSeconds: number
  /** What each run of the tool calls its window, for the progress line ("profiled", "counted"). */
  verb: string
  seconds: number
  /** Node options for each target, made afresh before it starts (an inspector port, say). */
  nodeArgs?: () => Promise<string[]>
  /** Measures one target once it is listening and warmed up; the target is stopped after. */
  measure: (run: ByHandRun) => Promise<T>
}

/**
 * What the side-by-side tools (bench/cpuprof.ts, bench/syscalls.ts) share:
 * wrk required, pinned as in the harness (targets on the last half of the
 * CPUs; backend and wrk on the rest), the harness's backend (and Redis when a
 * gateway route needs it), then each target in turn: started as
 * `targetByHand` says, warmed up with wrk, measured, stopped.
 */
export async function sideBySide<T> (o: SideBySideOptions<T>): Promise<{ results: T[], pinning: string }> {
  if (which('wrk') === undefined) throw new Error('wrk is not on PATH (Debian: apt-get install -y wrk)')
  const cpus = availableParallelism()
  const split = cpus >= 2 && which('taskset') !== undefined ? cpuSplit(cpus) : undefined
  setPinning(split)
  installCleanup()
  const routes = o.targets.filter(t => t.startsWith('gateway')).map(t => t.split(':')[1] ?? o.route)
  const h = await startHarness({ needRedis: routes.some(r => r !== '/pass'), needNginx: false, serviceModes: [] })
  const results: T[] = []
  try {
    for (const spec of o.targets) {
      process.stderr.write(`${spec}: ${o.warmupSeconds} s warm-up, ${o.seconds} s ${o.verb}\n`)
      const [target, own] = spec.split(':') as [string, string | undefined]
      const { args, path, headers } = await targetByHand(h.env, target, own ?? o.route)
      const nodeArgs = await o.nodeArgs?.() ?? []
      const sut: Child = spawnChild(target, process.execPath, [...nodeArgs, ...args], { role: 'sut' })
      try {
        const url = (await waitForLine(sut, LISTENING, 30_000))[1]!.replace(/\/$/, '') + path
        await wrk(url, o.warmupSeconds, headers, split?.rest)
        results.push(await o.measure({ spec, url, headers, pid: sut.pid, loadCpus: split?.rest }))
      } finally {
        await stopChild(sut)
      }
    }
  } finally {
    await h.close()
  }
  return { results, pinning: split === undefined ? 'not pinned' : `target on CPU ${split.sut}, backend and wrk on CPU ${split.rest}` }
}
