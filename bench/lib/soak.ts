/**
 * Soak: a million requests (by default) through the gateway's passthrough
 * route and its Redis pub/sub route, each with its own gateway process. The
 * gateway's RSS is read after every tenth of the requests, as it is then and
 * as its peak during that tenth (VmHWM, reset after each reading); the bar is
 * the last tenth's peak within 10% of the first tenth's (PRODUCT §8.2, flat
 * memory). The peak, because RSS at one instant swings by ±10% with where V8
 * is in its collection cycle (old space fills with garbage to ~4× the live
 * heap before a full collection, and the pages stay committed), while the
 * peak over 100,000 requests is the top of that cycle every time. A leak
 * raises the peaks; the cycle does not.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, relative } from 'node:path'
import { runAutocannon } from './load.js'
import type { Options } from './options.js'
import { peakRssKb, resetPeakRss, rssKb } from './proc-stats.js'
import { stopChild } from './procs.js'
import type { RunInfo } from './report.js'
import { checkData, verify } from './scenarios.js'
import type { Harness } from './setup.js'
import { startGateway, type Running } from './targets.js'

/** RSS at the end may exceed RSS after the first tenth by at most this factor. */
const BAR = 1.10
const CHECKPOINTS = 10
/** A soak that has not finished by then is stopped (it bounds a hung gateway). */
const LIMIT_MS = 45 * 60_000

interface Row { requests: number, rssKb: number, peakKb: number, rps: number, non2xx: number, errors: number }
interface RouteResult { name: string, route: string, status: 'ok' | 'skipped' | 'failed', reason?: string, rows: Row[], notes: string[], peaks: boolean }

const ROUTES = [
  { name: 'HTTP passthrough', id: 'passthrough', route: '/pass', needsPubsub: false },
  { name: 'Redis pub/sub', id: 'redis', route: '/redis', needsPubsub: true }
]

export async function runSoak (opts: Options, h: Harness, info: RunInfo): Promise<void> {
  const chunk = Math.max(1, Math.floor(opts.requests / CHECKPOINTS))
  const results: RouteResult[] = []
  for (const r of ROUTES) {
    const result: RouteResult = { name: r.name, route: r.route, status: 'ok', rows: [], notes: [], peaks: true }
    results.push(result)
    process.stderr.write(`\n▶ soak ${r.name}: ${(chunk * CHECKPOINTS).toLocaleString('en-US')} requests\n`)
    let run: Running | undefined
    try {
      run = await startGateway(h.env, `soak-${r.id}`, [r.route])
      result.notes.push(...run.notes)
      if (r.needsPubsub && h.service?.pubsub == null) throw new Error(`no Redis pub/sub service (${h.service?.notes.join('; ') ?? 'Redis not started'})`)
      const problem = await verify(run.base + r.route, {}, checkData)
      if (problem !== undefined) { result.status = 'failed'; result.reason = `check failed: ${problem}`; continue }
    } catch (err) {
      result.status = run === undefined ? 'skipped' : 'failed'
      result.reason = (err as Error).message
      process.stderr.write(`  ${result.status}: ${result.reason}\n`)
      continue
    } finally {
      if (result.status !== 'ok' && run?.child !== undefined) await stopChild(run.child)
    }
    const pids = [run.pid]
    if (!resetPeakRss(pids)) { result.peaks = false; result.notes.push('the kernel refused to reset peak RSS (/proc/<pid>/clear_refs): the bar uses RSS at each reading') }
    try {
      await runAutocannon({ url: run.base + r.route, connections: opts.connections, amount: chunk, repeat: CHECKPOINTS, warmupS: 0 }, {
        start: () => {},
        end: (m, i) => {
          const row = { requests: (i + 1) * chunk, rssKb: rssKb(pids), peakKb: peakRssKb(pids), rps: m.ok / m.elapsedS, non2xx: m.non2xx, errors: m.errors }
          if (result.peaks) resetPeakRss(pids)
          result.rows.push(row)
          process.stderr.write(`  ${row.requests.toLocaleString('en-US').padStart(10)} requests: RSS ${(row.rssKb / 1024).toFixed(1)} MiB (peak ${(row.peakKb / 1024).toFixed(1)}), ${Math.round(row.rps).toLocaleString('en-US')} req/s${row.non2xx + row.errors > 0 ? `, ⚠ ${row.non2xx} non-2xx, ${row.errors} errors` : ''}\n`)
        }
      }, LIMIT_MS)
    } catch (err) {
      result.status = 'failed'
      result.reason = (err as Error).message
    } finally {
      if (run.child !== undefined) await stopChild(run.child)
    }
  }
  const md = renderSoak(info, chunk, results)
  process.stdout.write('\n' + md)
  mkdirSync(dirname(opts.out), { recursive: true })
  writeFileSync(opts.out, md)
  process.stderr.write(`\nwrote ${relative(process.cwd(), opts.out)}\n`)
}

function renderSoak (info: RunInfo, chunk: number, results: RouteResult[]): string {
  const mib = (kb: number): string => (kb / 1024).toFixed(1)
  const out: string[] = [`# Switchyard soak — ${info.mode}`, '']
  out.push(`${info.date} · commit ${info.commit} · Node ${info.node} · ${info.cpu} (${info.cores} cores) · ${info.connections} connections · ${info.versions.join(' · ')}`, '')
  out.push(`Gateway RSS after every ${chunk.toLocaleString('en-US')} requests: at that moment (VmRSS), and the peak during those requests (VmHWM, reset after each reading). The bar: the peak during the last ${chunk.toLocaleString('en-US')} ≤ ${BAR.toFixed(2)}× the peak during the first ${chunk.toLocaleString('en-US')}. RSS at one moment swings with V8's collection cycle; the peak of each tenth is the top of that cycle (bench/lib/soak.ts).`, '')
  const bars: string[] = []
  for (const r of results) {
    out.push(`## ${r.name} (\`${r.route}\`)`, '')
    if (r.rows.length === 0) {
      out.push(`${r.status}: ${r.reason ?? ''}`, '')
      bars.push(`- **SKIPPED** ${r.name}: RSS flat within 10% (${r.status}: ${r.reason ?? ''})`)
      continue
    }
    out.push('| requests | RSS MiB | peak RSS MiB (this tenth) | req/s (this tenth) | non-2xx | errors |', '|--:|--:|--:|--:|--:|--:|')
    for (const row of r.rows) out.push(`| ${row.requests.toLocaleString('en-US')} | ${mib(row.rssKb)} | ${mib(row.peakKb)} | ${Math.round(row.rps).toLocaleString('en-US')} | ${row.non2xx} | ${row.errors} |`)
    out.push('')
    if (r.status !== 'ok' || r.rows.length < CHECKPOINTS) {
      bars.push(`- **FAIL** ${r.name}: RSS flat within 10% (stopped after ${r.rows.length * chunk} requests: ${r.reason ?? ''})`)
      continue
    }
    const kb = (row: Row): number => r.peaks ? row.peakKb : row.rssKb
    const ratio = kb(r.rows.at(-1)!) / kb(r.rows[0]!)
    const what = r.peaks ? 'peak RSS of the last tenth ÷ the first' : 'RSS at the end ÷ after the first tenth'
    bars.push(`- **${ratio <= BAR ? 'PASS' : 'FAIL'}** ${r.name}: RSS flat within 10% — measured ${ratio.toFixed(2)}× (${what}: ${mib(kb(r.rows[0]!))} → ${mib(kb(r.rows.at(-1)!))} MiB; RSS at the end ÷ after the first tenth: ${(r.rows.at(-1)!.rssKb / r.rows[0]!.rssKb).toFixed(2)}×)`)
  }
  out.push('## Bars (PRODUCT §8.2)', '', ...bars)
  const notes = [...info.notes, ...results.flatMap(r => r.notes.map(n => `${r.name}: ${n}`))]
  if (notes.length > 0) out.push('', '## Notes', '', ...notes.map(n => `- ${n}`))
  out.push('')
  return out.join('\n')
}
