/**
 * `npm run bench` — the gateway and its anchors side by side, on loopback,
 * each in its own process (docs/performance.md).
 *
 *   npm run bench                       every scenario, 2 s warm-up + 10 s × 3 rounds
 *   npm run bench -- --quick            < 2 minutes: 1 s + 3 s × 1 round, the scenarios the bars need
 *   npm run bench -- --only passthrough,redis --targets gateway,undici
 *   npm run bench -- --soak [--requests 1000000]
 *
 * Writes bench/results/latest.md (and latest.json beside it, not committed).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, relative } from 'node:path'
import { runLoad } from './lib/load.js'
import { FULL_ROUNDS, parseOptions, type Options } from './lib/options.js'
import { cpuSeconds, peakRssKb, processTree, resetPeakRss } from './lib/proc-stats.js'
import { installCleanup, ROOT, setPinning, stopChild } from './lib/procs.js'
import { evaluateBars, median, renderReport, type RunInfo, type Sample, type ScenarioResult, type TargetResult } from './lib/report.js'
import { checkAnchor, checkData, SCENARIO_IDS, SCENARIOS, verify, type Scenario } from './lib/scenarios.js'
import { describeTools, startHarness, type Harness } from './lib/setup.js'
import { runSoak } from './lib/soak.js'
import { jwtHeaders, startAnchor, startGateway, TARGET_LABELS, type Running, type TargetKind } from './lib/targets.js'

const log = (line: string): void => { process.stderr.write(line + '\n') }

/** The passthrough route of configs/gateway.template.json (the `gateway-pass` target). */
const PASS_ROUTE = '/pass'

function machine (): { cpu: string, cores: number } {
  let cpu = cpus()[0]?.model ?? 'unknown CPU'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m !== null) cpu = m[1]!.trim()
  } catch {}
  return { cpu, cores: cpus().length }
}

function commit (): string {
  try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { return 'unknown' }
}

function runInfo (opts: Options, h: Harness, mode: string): RunInfo {
  const m = machine()
  return {
    mode,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: commit(),
    node: process.version,
    cpu: m.cpu,
    cores: m.cores,
    tool: opts.tool,
    durationS: opts.durationS,
    warmupS: opts.warmupS,
    rounds: opts.rounds,
    connections: opts.connections,
    versions: describeTools(h.env, opts.tool),
    notes: [...opts.notes, ...h.notes]
  }
}

let peakResetRefused = false

async function measure (run: Running, url: string, headers: Record<string, string>, opts: Options): Promise<{ sample: Sample, peakKb: number }> {
  const pids = processTree(run.pid)
  if (!resetPeakRss(pids)) peakResetRefused = true
  let cpuStart = 0
  let cpuEnd = 0
  const m = await runLoad(opts.tool, { url, connections: opts.connections, durationS: opts.durationS, warmupS: opts.warmupS, headers }, {
    start: () => { cpuStart = cpuSeconds(pids) },
    end: () => { cpuEnd = cpuSeconds(pids) }
  })
  return {
    sample: {
      rps: m.ok / m.elapsedS,
      p50Ms: m.p50Ms,
      p99Ms: m.p99Ms,
      cpuUsPerReq: m.responses > 0 ? (cpuEnd - cpuStart) * 1e6 / m.responses : Number.NaN,
      responses: m.responses,
      ok: m.ok,
      non2xx: m.non2xx,
      errors: m.errors
    },
    peakKb: peakRssKb(pids)
  }
}

async function runScenario (sc: Scenario, h: Harness, opts: Options, jwtHeaders: Record<string, string>): Promise<ScenarioResult> {
  // The baseline (--baseline) runs beside the gateway in every scenario, whatever --targets says.
  const kinds = (['gateway', ...(opts.baseline !== undefined ? ['gateway-baseline'] : []), ...sc.anchors] as TargetKind[])
    .filter(k => opts.targets === undefined || opts.targets.has(k) || k === 'gateway-baseline')
  const headers = sc.jwt === true ? jwtHeaders : {}
  const results: TargetResult[] = []
  const running = new Map<TargetKind, Running>()
  log(`\n▶ ${sc.id}: ${sc.title}`)
  try {
    // Start and check every target at once: each start is mostly waiting for a child's first line.
    await Promise.all(kinds.map(async (kind) => {
      const r: TargetResult = { kind, status: 'ok', samples: [], notes: [] }
      results.push(r)
      let run: Running
      try {
        if (kind === 'gateway-pass') return // the gateway's own /pass route: set up once the gateway is up
        if (kind === 'gateway' || kind === 'gateway-baseline') {
          const routes = kinds.includes('gateway-pass') ? [sc.route, PASS_ROUTE] : [sc.route]
          run = kind === 'gateway' ? await startGateway(h.env, sc.id, routes) : await startGateway(h.env, sc.id, routes, h.env.baselineBin, kind)
        } else {
          if (kind === 'bare-pubsub' && h.service?.pubsub == null) throw new Error(`no Redis pub/sub service (${h.service?.notes.join('; ') ?? 'Redis not started'})`)
          run = await startAnchor(h.env, kind)
        }
      } catch (err) {
        r.status = 'skipped'
        r.reason = (err as Error).message
        log(`  ${TARGET_LABELS[kind]}: skipped: ${r.reason}`)
        return
      }
      running.set(kind, run)
      r.notes.push(...run.notes)
      const isGateway = kind === 'gateway' || kind === 'gateway-baseline'
      if (isGateway && sc.service !== undefined && h.service?.[sc.service] == null) {
        r.status = 'skipped'
        r.reason = `the Redis service has no ${sc.service} mode (${h.service?.notes.join('; ') ?? 'Redis not started'})`
      } else {
        const problem = await verify(run.base + (isGateway ? sc.route : sc.anchorPath), headers, isGateway ? sc.checkGateway : checkAnchor(sc))
        if (problem !== undefined) { r.status = 'failed'; r.reason = `check failed: ${problem}` }
      }
      if (r.status !== 'ok') {
        log(`  ${TARGET_LABELS[kind]}: ${r.status}: ${r.reason}`)
        if (run.child !== undefined) await stopChild(run.child)
        running.delete(kind)
      }
    }))
    const pass = results.find(r => r.kind === 'gateway-pass')
    if (pass !== undefined) {
      const gw = running.get('gateway')
      if (gw === undefined) {
        pass.status = 'skipped'
        pass.reason = 'the gateway did not start'
      } else {
        const problem = await verify(gw.base + PASS_ROUTE, headers, checkData)
        if (problem === undefined) running.set('gateway-pass', gw)
        else { pass.status = 'failed'; pass.reason = `check failed: ${problem}` }
      }
    }
    // Keep the report's order (gateway first, then the anchors as listed), whatever order they started in.
    results.sort((a, b) => kinds.indexOf(a.kind) - kinds.indexOf(b.kind))
    // The direct backend alone is no comparison: measure it only beside something else.
    const gateway = results.find(r => r.kind === 'gateway')
    const direct = results.find(r => r.kind === 'direct')
    if (gateway !== undefined && gateway.status !== 'ok' && direct?.status === 'ok' && results.every(r => r.kind === 'direct' || r.kind === 'gateway' || r.status !== 'ok')) {
      direct.status = 'skipped'
      direct.reason = 'nothing to compare it with in this scenario'
    }

    for (let round = 0; round < opts.rounds; round++) {
      const live = results.filter(r => r.status === 'ok')
      // Rotate the order each round so no target always runs first or last.
      const order = live.map((_, i) => live[(i + round) % live.length]!)
      for (const r of order) {
        const run = running.get(r.kind)!
        const path = r.kind === 'gateway' || r.kind === 'gateway-baseline' ? sc.route : r.kind === 'gateway-pass' ? PASS_ROUTE : sc.anchorPath
        try {
          const { sample, peakKb } = await measure(run, run.base + path, headers, opts)
          r.samples.push(sample)
          r.peakRssKb = Math.max(r.peakRssKb ?? 0, peakKb)
          const errs = sample.non2xx + sample.errors > 0 ? `, ⚠ ${sample.non2xx} non-2xx, ${sample.errors} errors` : ''
          log(`  ${TARGET_LABELS[r.kind].padEnd(25)} round ${round + 1}/${opts.rounds}: ${Math.round(sample.rps).toLocaleString('en-US').padStart(7)} req/s  p50 ${sample.p50Ms.toFixed(2)} ms  p99 ${sample.p99Ms.toFixed(2)} ms  CPU ${sample.cpuUsPerReq.toFixed(1)} µs/req  peak RSS ${(peakKb / 1024).toFixed(1)} MiB${errs}`)
        } catch (err) {
          r.status = 'failed'
          r.reason = (err as Error).message
          log(`  ${TARGET_LABELS[r.kind]}: failed: ${r.reason}`)
        }
        if (run.child?.isDone() === true && r.status === 'ok') {
          r.status = 'failed'
          r.reason = 'the process exited during the run'
        }
      }
    }
  } finally {
    // gateway-pass shares the gateway's process: each process is stopped once.
    await Promise.all([...new Set(running.values())].map(async run => { if (run.child !== undefined) await stopChild(run.child) }))
  }
  return { id: sc.id, title: sc.title, targets: results }
}

async function main (): Promise<void> {
  const opts = parseOptions()
  setPinning(opts.pinning)
  installCleanup()
  const scenarios = opts.soak ? [] : opts.scenarios.map(id => SCENARIOS[id])
  const modes = new Set<'pubsub' | 'stream'>()
  for (const s of scenarios) {
    if (s.service !== undefined) modes.add(s.service)
    if (s.anchors.includes('bare-pubsub')) modes.add('pubsub')
  }
  if (opts.soak) modes.add('pubsub')
  const h = await startHarness({
    baseline: opts.baseline,
    needRedis: true,
    serviceModes: [...modes],
    needNginx: scenarios.some(s => s.anchors.includes('nginx')) && (opts.targets === undefined || opts.targets.has('nginx'))
  })
  try {
    for (const n of h.notes) log(`note: ${n}`)
    if (opts.soak) {
      await runSoak(opts, h, runInfo(opts, h, `soak (${opts.requests.toLocaleString('en-US')} requests per route)`))
      return
    }
    const jwt = await jwtHeaders()
    const results: ScenarioResult[] = []
    for (const sc of scenarios) results.push(await runScenario(sc, h, opts, jwt))
    const full = opts.rounds === FULL_ROUNDS && opts.durationS === 10 && opts.warmupS === 2 && opts.connections === 50 && opts.scenarios.length === SCENARIO_IDS.length && opts.targets === undefined
    const mode = opts.quick ? 'quick' : full ? 'full' : 'custom'
    const info = runInfo(opts, h, mode)
    if (peakResetRefused) info.notes.push('the kernel refused to reset peak RSS (/proc/<pid>/clear_refs): peaks are since each process started')
    info.notes.push('req/s counts 2xx responses only; CPU µs/req is user + system time of the process under test (and its children) over the measured window, divided by its responses; peak RSS is VmHWM, reset before each round.')
    const bars = evaluateBars(results)
    const md = renderReport(info, results, bars)
    process.stdout.write('\n' + md)
    mkdirSync(dirname(opts.out), { recursive: true })
    writeFileSync(opts.out, md)
    writeFileSync(opts.out.replace(/\.md$/, '') + '.json', JSON.stringify({ info, results, bars, medians: summarize(results) }, null, 2) + '\n')
    log(`\nwrote ${relative(process.cwd(), opts.out)}`)
  } finally {
    await h.close()
  }
}

function summarize (results: ScenarioResult[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const s of results) {
    for (const t of s.targets) if (t.status === 'ok') (out[s.id] ??= {})[t.kind] = median(t.samples.map(x => x.rps))
  }
  return out
}

await main()
process.exit(0)
