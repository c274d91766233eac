/**
 * Where a target's CPU time goes, per request: V8's sampling CPU profile
 * through the inspector (`Profiler`), taken while wrk loads the target,
 * pinned as in the harness (the target on the last half of the CPUs; the
 * backend and wrk on the rest). Each function's self time is divided by the
 * requests answered in the window, and so is the process's own CPU time
 * (user + system, from /proc), which includes what the profile cannot see:
 * the kernel's side of each system call, and V8's and libuv's other threads.
 *
 * With several targets (`--targets gateway,floor`), they are profiled one
 * after the other, and one table puts them side by side, sorted by how much
 * more the first spends than the last: the difference between two targets'
 * profiles is where one costs more than the other.
 *
 * Usage: node --import tsx bench/cpuprof.ts [--targets gateway|undici|floor|fastify,...]
 *   [--route /pass]   (a target may name its own route: --targets gateway:/jwt,gateway:/pass) [--warmup-seconds 4] [--seconds 10] [--interval 100] [--top 40]
 * Needs `wrk`. Each target is set up as in bench/callgrind.ts (targetByHand).
 * The profiler adds its own cost (more the shorter the interval), so compare
 * targets profiled the same way, not these figures with the harness's.
 */
import { argValue } from './lib/child.js'
import { inspector, sideBySide, wrk, type ByHandRun } from './lib/by-hand.js'
import { cpuSeconds } from './lib/proc-stats.js'
import { freePort, ROOT } from './lib/procs.js'

const targets = (argValue('targets') ?? argValue('target') ?? 'gateway').split(',').map(s => s.trim()).filter(s => s !== '')
const route = argValue('route') ?? '/pass'
const warmupSeconds = Number(argValue('warmup-seconds') ?? 4)
const seconds = Number(argValue('seconds') ?? 10)
const interval = Number(argValue('interval') ?? 100)
const top = Number(argValue('top') ?? 40)

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
interface Profile { nodes: Array<{ id: number, callFrame: CallFrame }>, samples: number[], timeDeltas: number[] }

/** The same function in every target's profile: its name and where it is defined (node_modules and the checkout's path cut off). */
function siteOf (f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName
  if (f.url === '') return name
  const where = f.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '').replace(ROOT, '')
  return `${name} ${where}:${f.lineNumber + 1}`
}

interface Measured { requests: number, cpuUsPerReq: number, selfUsPerReq: Map<string, number> }

/** Self time per request by function: each sample holds until the next one (V8's timeDeltas). */
function selfTimes (p: Profile, requests: number): Map<string, number> {
  const byId = new Map(p.nodes.map(n => [n.id, siteOf(n.callFrame)]))
  const out = new Map<string, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0
    const site = byId.get(p.samples[i]!) ?? '(unknown)'
    out.set(site, (out.get(site) ?? 0) + dt / requests)
  }
  return out
}

/** The inspector port of the target being profiled (targets are profiled one at a time). */
let inspect = 0

async function profileOne ({ url, headers, pid, loadCpus }: ByHandRun): Promise<Measured> {
  const session = await inspector(inspect)
  try {
    await session.send('Profiler.enable')
    await session.send('Profiler.setSamplingInterval', { interval })
    await session.send('Profiler.start')
    const before = cpuSeconds([pid])
    const requests = await wrk(url, seconds, headers, loadCpus)
    const cpu = cpuSeconds([pid]) - before
    const { profile } = await session.send('Profiler.stop') as { profile: Profile }
    return { requests, cpuUsPerReq: cpu * 1e6 / requests, selfUsPerReq: selfTimes(profile, requests) }
  } finally {
    session.close()
  }
}

const sum = (m: Map<string, number>, pred: (site: string) => boolean): number => [...m].reduce((a, [k, v]) => pred(k) ? a + v : a, 0)
const f1 = (x: number | undefined): string => (x ?? 0).toFixed(2).padStart(7)

async function main (): Promise<void> {
  const routes = targets.filter(t => t.startsWith('gateway')).map(t => t.split(':')[1] ?? route)
  const { results, pinning } = await sideBySide({
    targets,
    route,
    warmupSeconds,
    seconds,
    verb: 'profiled',
    nodeArgs: async () => { inspect = await freePort(); return [`--inspect=127.0.0.1:${inspect}`] },
    measure: profileOne
  })
  const out: string[] = []
  out.push(`${routes.length > 0 ? `gateway route ${[...new Set(routes)].join(', ')}; ` : ''}${pinning}; sampled every ${interval} µs; µs per request`)
  out.push('')
  const cols = targets.map(t => t.padStart(Math.max(9, t.length + 1))).join('')
  out.push(cols)
  const row = (label: string, values: number[]): void => { out.push(`${values.map(v => f1(v).padStart(9)).join('')}  ${label}`) }
  row('requests (thousands)', results.map(r => r.requests / 1000))
  row('process CPU (user + system, all threads)', results.map(r => r.cpuUsPerReq))
  row('profiled, main thread, not idle', results.map(r => sum(r.selfUsPerReq, s => s !== '(idle)')))
  row('  (garbage collector)', results.map(r => r.selfUsPerReq.get('(garbage collector)') ?? 0))
  row('  (program)', results.map(r => r.selfUsPerReq.get('(program)') ?? 0))
  row('  node: internals', results.map(r => sum(r.selfUsPerReq, s => / node:/.test(s))))
  row('  undici', results.map(r => sum(r.selfUsPerReq, s => / undici\//.test(s))))
  row('  packages/ (the gateway)', results.map(r => sum(r.selfUsPerReq, s => / packages\//.test(s))))
  row('  native (no script)', results.map(r => sum(r.selfUsPerReq, s => !s.includes(' ') && !s.startsWith('('))))
  out.push('')
  const sites = new Set(results.flatMap(r => [...r.selfUsPerReq.keys()]))
  const first = results[0]!
  const last = results[results.length - 1]!
  const order = [...sites].filter(s => s !== '(idle)').map(s => ({ s, d: (first.selfUsPerReq.get(s) ?? 0) - (results.length > 1 ? last.selfUsPerReq.get(s) ?? 0 : 0) }))
  order.sort((a, b) => Math.abs(b.d) - Math.abs(a.d))
  out.push(`${cols}  ${results.length > 1 ? `by function, largest |${targets[0]} − ${targets[targets.length - 1]}| first` : 'by function, largest first'}`)
  for (const { s } of order.slice(0, top)) row(s, results.map(r => r.selfUsPerReq.get(s) ?? 0))
  process.stdout.write(out.join('\n') + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`cpuprof: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
