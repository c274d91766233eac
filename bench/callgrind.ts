/**
 * Instructions per request under callgrind: for changes too small to see
 * through this VM's noise in CPU time (±20% over minutes, docs/performance.md
 * "Noise"). valgrind counts instructions, not seconds, so the same code under
 * the same load counts nearly the same whatever else the machine does.
 *
 * The backend runs natively; the target runs under
 * `valgrind --tool=callgrind`, with `node --perf-basic-prof` so that the
 * JavaScript V8 compiled can be named from /tmp/perf-<pid>.map. After a
 * warm-up (long enough for V8 to optimise the hot code), the counters are
 * zeroed, the measured requests are sent, and the counters are dumped. The
 * report: instructions per request for the whole process and for its event
 * loop (the main thread: background threads are mostly V8 compiling, which
 * varies from run to run), then the functions with the most instructions of
 * their own per request.
 *
 * A process sometimes runs Node's `process.nextTick` object literal through
 * V8's runtime on every call (~40k instructions a request more); the report
 * then ends with a warning, and the count should be taken again.
 *
 * What it does not count: the kernel (a loopback write is ~20 µs of system
 * time here), and cache misses. Compare two counts of the same target before
 * and after a change; use CPU time (`npm run bench`) across targets.
 *
 * Usage: node --import tsx bench/callgrind.ts [--target gateway|undici|floor|fastify]
 *   [--route /pass] [--warmup 40000] [--requests 20000] [--connections 50] [--top 40] [--keep DIR]
 * The gateway serves one route of configs/gateway.template.json (`--route`:
 * `/pass`, `/jwt` with the harness's bearer token, `/cached`, `/fan`, `/big`),
 * logging at info to /dev/null, with a private redis-server as in the harness;
 * the anchors proxy `/data`. Needs `valgrind` (Debian: `apt-get install -y valgrind`).
 * A run takes 3–5 minutes.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Client } from 'undici'
import { argValue } from './lib/child.js'
import { installCleanup, ROOT, spawnChild, stopChild, waitForLine, type Child } from './lib/procs.js'
import { targetByHand } from './lib/targets.js'
import { startHarness, which } from './lib/setup.js'

const run = promisify(execFile)
const LISTENING = /listening on (https?:\/\/\S+)/

const target = argValue('target') ?? 'gateway'
const route = argValue('route') ?? '/pass'
const warmup = Number(argValue('warmup') ?? 40_000)
const requests = Number(argValue('requests') ?? 20_000)
const connections = Number(argValue('connections') ?? 50)
const top = Number(argValue('top') ?? 40)
const keep = argValue('keep')

/** `requests` GETs of `path` over `connections` keep-alive connections, one at a time on each. */
async function load (base: string, path: string, headers: Record<string, string>, total: number): Promise<void> {
  let left = total
  let bad = 0
  const one = async (): Promise<void> => {
    const client = new Client(base)
    try {
      while (left-- > 0) {
        const res = await client.request({ path, method: 'GET', headers })
        if (res.statusCode !== 200) bad++
        await res.body.dump()
      }
    } finally {
      await client.close()
    }
  }
  await Promise.all(Array.from({ length: connections }, one))
  if (bad > 0) throw new Error(`${bad} of ${total} requests did not answer 200`)
}

/** Functions by self cost from a callgrind dump (`callgrind_annotate`), JIT code named through the perf map. */
async function selfCosts (dump: string, perfMap: string | undefined): Promise<Map<string, number>> {
  const { stdout } = await run('callgrind_annotate', ['--threshold=100', dump], { maxBuffer: 256 * 1024 * 1024 })
  const entries: Array<{ start: number, end: number, name: string }> = []
  if (perfMap !== undefined) {
    for (const line of readFileSync(perfMap, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
      if (m !== null) entries.push({ start: parseInt(m[1]!, 16), end: parseInt(m[1]!, 16) + parseInt(m[2]!, 16), name: m[3]! })
    }
    entries.sort((a, b) => a.start - b.start)
  }
  const lookup = (address: number): string => {
    let lo = 0
    let hi = entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (entries[mid]!.start <= address) lo = mid + 1
      else hi = mid - 1
    }
    const e = entries[hi]
    return e !== undefined && address < e.end ? e.name.replace(`file://${ROOT}`, '').replace(ROOT, '').replace('node_modules/', '') : '(JIT code, unnamed)'
  }
  const costs = new Map<string, number>()
  for (const line of stdout.split('\n')) {
    const m = /^\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*)$/.exec(line)
    if (m === null) continue
    let name = m[2]!.trim()
    const jit = /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(name)
    if (jit !== null) name = lookup(parseInt(jit[1]!, 16))
    else name = name.replace(/^\?\?\?:/, '').replace(/ \[[^\]]*\]$/, '')
    if (name.includes('PROGRAM TOTALS') || name === '???') continue
    costs.set(name, (costs.get(name) ?? 0) + Number(m[1]!.replace(/,/g, '')))
  }
  return costs
}

async function main (): Promise<void> {
  if (which('valgrind') === undefined || which('callgrind_control') === undefined) throw new Error('valgrind is not on PATH (Debian: apt-get install -y valgrind)')
  installCleanup()
  const h = await startHarness({ needRedis: target === 'gateway' && route !== '/pass', needNginx: false, serviceModes: [] })
  const tmp = h.env.tmp
  let sut: Child | undefined
  try {
    const { args, path, headers } = await targetByHand(h.env, target, route)
    const out = join(tmp, 'callgrind.out.%p')
    sut = spawnChild(target, 'valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, '--perf-basic-prof', ...args], {})
    const base = (await waitForLine(sut, LISTENING, 600_000))[1]!.replace(/\/$/, '')
    process.stdout.write(`${target} at ${base} under callgrind; warming up with ${warmup} requests\n`)
    await load(base, path, headers, warmup)
    await run('callgrind_control', ['-z', String(sut.pid)])
    await load(base, path, headers, requests)
    await run('callgrind_control', ['-d', String(sut.pid)])
    const dump = readdirSync(tmp).find(f => f.startsWith(`callgrind.out.${sut!.pid}.`))
    if (dump === undefined) throw new Error('callgrind wrote no dump')
    const file = join(tmp, dump)
    const perfMap = `/tmp/perf-${sut.pid}.map`
    const costs = await selfCosts(file, existsSync(perfMap) ? perfMap : undefined)
    const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(file, 'utf8'))
    const { stdout } = await run('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 })
    const loop = /^\s*([0-9,]+) .*node::SpinEventLoopInternal/m.exec(stdout)
    const per = (n: number): string => Math.round(n / requests).toLocaleString('en-US')
    process.stdout.write(`\n${target} ${path}, ${requests} requests at ${connections} connections after ${warmup} of warm-up\n`)
    process.stdout.write(`instructions per request: ${totals === null ? '?' : per(Number(totals[1]))} in all, ${loop === null ? '?' : per(Number(loop[1]!.replace(/,/g, '')))} on the event loop\n\n`)
    const rows = [...costs].sort((a, b) => b[1] - a[1]).slice(0, top)
    for (const [name, n] of rows) process.stdout.write(`${per(n).padStart(8)}  ${name.slice(0, 140)}\n`)
    // In some processes under valgrind, V8 leaves the object literal of Node's process.nextTick (its
    // computed symbol keys) to the runtime, with map transitions and migrations on every call: ~40k
    // instructions a request more, decided per process. Such a count is not comparable with others.
    let literal = 0
    for (const [name, n] of costs) if (name.includes('Runtime_DefineKeyedOwnPropertyInLiteral')) literal += n
    if (literal / requests > 1000) {
      process.stdout.write(`\nwarning: V8 defined object-literal properties in its runtime (${per(literal)} a request, Runtime_DefineKeyedOwnPropertyInLiteral): this process ran Node's nextTick on a slow path, so this count is not comparable; run again\n`)
    }
    if (keep !== undefined) {
      // For callgrind_annotate --tree=caller by hand: the dump, and the JIT names it needs.
      mkdirSync(keep, { recursive: true })
      copyFileSync(file, join(keep, dump))
      if (existsSync(perfMap)) copyFileSync(perfMap, join(keep, `perf-${sut.pid}.map`))
      process.stdout.write(`\nkept ${join(keep, dump)}\n`)
    }
    rmSync(perfMap, { force: true })
    // --perf-basic-prof also has V8 write a log per isolate into the working directory.
    for (const f of readdirSync(ROOT)) if (new RegExp(`^isolate-0x[0-9a-f]+-${sut.pid}-v8\\.log$`).test(f)) rmSync(join(ROOT, f), { force: true })
  } finally {
    if (sut !== undefined) await stopChild(sut)
    await h.close()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`callgrind: ${(err as Error).message}\n`)
  process.exitCode = 1
})
