/**
 * Runs the load generator in its own process: autocannon (the default, a dev
 * dependency, load/autocannon-worker.ts) or wrk when asked for and installed.
 * The harness's `start`/`end` hooks run at the edges of the measured window
 * (not the warm-up), where it reads the proxy's CPU counters.
 */
import { spawnChild, spawnTs, stopChild, failureReason, ROOT } from './procs.js'
import type { WorkerResult, WorkerSpec } from '../load/autocannon-worker.js'

export type LoadTool = 'autocannon' | 'wrk'

export interface LoadSpec {
  url: string
  connections: number
  durationS: number
  warmupS: number
  headers?: Record<string, string>
}

/** One measured window. `ok` counts 2xx responses; req/s is `ok / elapsedS`. */
export type Measurement = WorkerResult

export interface WindowHooks {
  start: () => void
  end: () => void
}

/** Slack over the planned run time before a load process counts as hung. */
const SLACK_MS = 60_000

export async function runLoad (tool: LoadTool, spec: LoadSpec, hooks: WindowHooks): Promise<Measurement> {
  return tool === 'wrk' ? await runWrk(spec, hooks) : (await runAutocannon({ ...spec }, hooks))[0]!
}

/** autocannon in a child process; one result per measured run (`repeat`, default 1). */
export async function runAutocannon (spec: WorkerSpec, hooks: { start: () => void, end: (m: Measurement, index: number) => void }, limitMs?: number): Promise<Measurement[]> {
  const child = spawnTs('autocannon', 'bench/load/autocannon-worker.ts', [JSON.stringify(spec)], { role: 'rest' })
  const results: Measurement[] = []
  child.onLine((line) => {
    if (line === 'measure-start') hooks.start()
    else if (line.startsWith('measure-end ')) {
      const m = JSON.parse(line.slice('measure-end '.length)) as Measurement
      results.push(m)
      hooks.end(m, results.length - 1)
    }
  })
  const planned = (spec.warmupS + (spec.durationS ?? 0) * (spec.repeat ?? 1)) * 1000
  const timer = setTimeout(() => { stopChild(child).catch(() => {}) }, limitMs ?? planned + SLACK_MS)
  const code = await child.exited
  clearTimeout(timer)
  if (results.length < (spec.repeat ?? 1)) throw new Error(`autocannon exited (${code}) after ${results.length} run(s): ${failureReason(child)}`)
  return results
}

function wrkArgs (spec: LoadSpec, durationS: number, script?: string): string[] {
  const args = ['-t1', `-c${spec.connections}`, `-d${durationS}s`, '--timeout', '10s']
  for (const [k, v] of Object.entries(spec.headers ?? {})) args.push('-H', `${k}: ${v}`)
  if (script !== undefined) args.push('-s', script)
  args.push(spec.url)
  return args
}

async function runWrk (spec: LoadSpec, hooks: WindowHooks): Promise<Measurement> {
  const run = async (durationS: number, script?: string): Promise<string> => {
    const child = spawnChild('wrk', 'wrk', wrkArgs(spec, durationS, script), { role: 'rest' })
    const timer = setTimeout(() => { stopChild(child).catch(() => {}) }, durationS * 1000 + SLACK_MS)
    const code = await child.exited
    clearTimeout(timer)
    if (code !== 0) throw new Error(`wrk exited (${code}): ${failureReason(child)}`)
    return child.stdoutTail()
  }
  if (spec.warmupS > 0) await run(spec.warmupS)
  hooks.start()
  const out = await run(spec.durationS, `${ROOT}bench/load/wrk-report.lua`)
  hooks.end()
  const line = out.split('\n').find(l => l.startsWith('wrk-result '))
  if (line === undefined) throw new Error(`wrk printed no result: ${out.slice(-300)}`)
  const r = JSON.parse(line.slice('wrk-result '.length)) as Record<string, number>
  const errors = r.connect! + r.read! + r.write! + r.timeout!
  return {
    responses: r.requests!,
    ok: r.requests! - r.status!,
    non2xx: r.status!,
    errors,
    timeouts: r.timeout!,
    elapsedS: r.durationUs! / 1e6,
    p50Ms: r.p50Us! / 1000,
    p99Ms: r.p99Us! / 1000,
    bytes: r.bytes!
  }
}
