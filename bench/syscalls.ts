/**
 * System calls and page faults per request, by target: `perf stat`'s
 * tracepoint counters on every thread of the target while wrk loads it,
 * pinned as in the harness (the target on the last half of the CPUs; the
 * backend and wrk on the rest). The counts are divided by the requests
 * answered in the window, and shown beside the process's user and system
 * CPU time per request (from /proc). Counting records no event, so it adds
 * little to each call.
 *
 * What it is for: on a VM where a system call is dear (~1 µs for `getppid`
 * on the EPYC VMs; "Afternoon of 2026-12-07" in docs/performance.md), a
 * proxy that made more calls per request than another would pay for each.
 *
 * Usage: node --import tsx bench/syscalls.ts [--targets gateway,undici,floor,fastify]
 *   [--route /pass] (a target may name its own: gateway:/jwt) [--warmup-seconds 3] [--seconds 8]
 *   [--trace off] (only user and system CPU per request, untraced)
 * Needs `wrk`, and `perf` with the syscall and exception tracepoints
 * (Debian: linux-perf, run as root).
 */
import { spawn } from 'node:child_process'
import { argValue } from './lib/child.js'
import { sideBySide, wrk, type ByHandRun } from './lib/by-hand.js'
import { parsePerfStat } from './lib/perf-stat.js'
import { cpuTimes } from './lib/proc-stats.js'
import { which } from './lib/setup.js'

const targets = (argValue('targets') ?? argValue('target') ?? 'gateway,undici,floor,fastify').split(',').map(s => s.trim()).filter(s => s !== '')
const route = argValue('route') ?? '/pass'
const warmupSeconds = Number(argValue('warmup-seconds') ?? 3)
const seconds = Number(argValue('seconds') ?? 8)
/** `--trace off`: only the user and system CPU per request, without perf's counters. */
const tracing = argValue('trace') !== 'off'

interface Measured { requests: number, userUs: number, systemUs: number, counts: Map<string, number> }

/** The counters: every system call, user page faults, and each call by name. */
const EVENTS = 'raw_syscalls:sys_enter,exceptions:page_fault_user,syscalls:sys_enter_*'

/** `perf stat` counting on every thread of `pid` while `during` runs; resolves with its counts. */
async function counted<T> (pid: number, during: () => Promise<T>): Promise<{ result: T, counts: Map<string, number> }> {
  if (!tracing) return { result: await during(), counts: new Map() }
  const perf = spawn('perf', ['stat', '-x,', '-e', EVENTS, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let text = ''
  perf.stderr.setEncoding('utf8').on('data', (d: string) => { text += d })
  const exited = new Promise<void>((resolve) => { perf.on('close', () => { resolve() }) })
  // perf prints nothing once it is counting: give it a moment to attach to every thread.
  await new Promise((resolve) => { setTimeout(resolve, 500) })
  const result = await during()
  perf.kill('SIGINT')
  await exited
  const counts = parsePerfStat(text)
  if (!counts.has('raw_syscalls:sys_enter')) throw new Error(`perf stat counted nothing (it needs root and tracefs):\n${text.slice(0, 2000)}`)
  return { result, counts }
}

async function measureOne ({ url, headers, pid, loadCpus }: ByHandRun): Promise<Measured> {
  const { result, counts } = await counted(pid, async () => {
    const before = cpuTimes(pid)
    const requests = await wrk(url, seconds, headers, loadCpus)
    const after = cpuTimes(pid)
    return { requests, user: after.user - before.user, system: after.system - before.system }
  })
  return { requests: result.requests, userUs: result.user * 1e6 / result.requests, systemUs: result.system * 1e6 / result.requests, counts }
}

async function main (): Promise<void> {
  if (tracing && which('perf') === undefined) throw new Error('perf is not on PATH (Debian: apt-get install -y linux-perf)')
  const { results, pinning } = await sideBySide({ targets, route, warmupSeconds, seconds, verb: 'counted', measure: measureOne })
  const f = (x: number, d = 2): string => x.toFixed(d).padStart(10)
  const cols = targets.map(t => t.padStart(Math.max(10, t.length + 1))).join('')
  const out: string[] = []
  out.push(`${pinning}; per request${tracing ? ', counted by perf stat' : ', without perf'}`)
  out.push('')
  out.push(cols)
  const row = (label: string, values: number[], d = 2): void => { out.push(`${values.map(v => f(v, d)).join('')}  ${label}`) }
  row('requests (thousands)', results.map(r => r.requests / 1000), 1)
  row('user CPU µs', results.map(r => r.userUs))
  row('system CPU µs', results.map(r => r.systemUs))
  if (tracing) {
    const perReq = (r: Measured, n: string): number => (r.counts.get(n) ?? 0) / r.requests
    row('system calls', results.map(r => perReq(r, 'raw_syscalls:sys_enter')), 3)
    row('page faults (user)', results.map(r => perReq(r, 'exceptions:page_fault_user')), 3)
    out.push('')
    out.push(`${cols}  calls per request, by call`)
    const names = [...new Set(results.flatMap(r => [...r.counts.keys()]))].filter(n => !n.includes(':'))
    names.sort((a, b) => Math.max(...results.map(r => perReq(r, b))) - Math.max(...results.map(r => perReq(r, a))))
    for (const n of names) {
      const v = results.map(r => perReq(r, n))
      if (Math.max(...v) >= 0.0005) row(n, v, 4)
    }
  }
  process.stdout.write(out.join('\n') + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`syscalls: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
