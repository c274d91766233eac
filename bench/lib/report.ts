/**
 * Results → the markdown of bench/results/latest.md: one table of every
 * measurement, the ratios of the gateway to each anchor within the same
 * scenario, and the PRODUCT §8.1 bars with PASS / FAIL / SKIPPED.
 */
import type { ScenarioId } from './scenarios.js'
import { TARGET_LABELS, type TargetKind } from './targets.js'

export interface Sample {
  /** 2xx responses per second. */
  rps: number
  p50Ms: number
  p99Ms: number
  /** CPU time (user + system) of the process under test per response, in µs. */
  cpuUsPerReq: number
  responses: number
  ok: number
  non2xx: number
  errors: number
}

export interface TargetResult {
  kind: TargetKind
  status: 'ok' | 'skipped' | 'failed'
  reason?: string
  samples: Sample[]
  /** Largest peak RSS over the rounds, in KiB. */
  peakRssKb?: number
  notes: string[]
}

export interface ScenarioResult {
  id: ScenarioId
  title: string
  targets: TargetResult[]
}

export interface RunInfo {
  mode: string
  date: string
  commit: string
  node: string
  cpu: string
  cores: number
  tool: string
  durationS: number
  warmupS: number
  rounds: number
  connections: number
  versions: string[]
  notes: string[]
}

export interface Bar {
  name: string
  status: 'PASS' | 'FAIL' | 'SKIPPED'
  ratio?: number
  /** The ratio the bar asks for (`ratio >= min` passes). */
  min: number
  detail: string
}

/**
 * A bar's measured ratio with two decimals, or more when two would round it
 * onto the other side of the bar: 0.5965 against 0.6 prints `0.597×`, not a
 * `0.60×` beside FAIL.
 */
export function barRatio (r: number, min: number): string {
  if (!Number.isFinite(r)) return '—'
  const pass = r >= min
  for (let digits = 2; digits < 6; digits++) {
    const shown = r.toFixed(digits)
    if ((Number(shown) >= min) === pass) return `${shown}×`
  }
  return `${r.toFixed(6)}×`
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const int = (x: number): string => Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—'
const dec = (x: number, digits = 2): string => Number.isFinite(x) ? x.toFixed(digits) : '—'
const ratio = (x: number | undefined): string => x === undefined || !Number.isFinite(x) ? '—' : `${x.toFixed(2)}×`
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

/** Median 2xx req/s of a measured target. */
export function rpsOf (t: TargetResult | undefined): number | undefined {
  return t?.status === 'ok' && t.samples.length > 0 ? median(t.samples.map(s => s.rps)) : undefined
}

function errorsOf (t: TargetResult): { non2xx: number, errors: number, responses: number } {
  return t.samples.reduce((a, s) => ({ non2xx: a.non2xx + s.non2xx, errors: a.errors + s.errors, responses: a.responses + s.responses }), { non2xx: 0, errors: 0, responses: 0 })
}

function whyMissing (scenarios: ScenarioResult[], id: ScenarioId, kind: TargetKind): string {
  const s = scenarios.find(x => x.id === id)
  if (s === undefined) return `scenario "${id}" not run`
  const t = s.targets.find(x => x.kind === kind)
  if (t === undefined) return `${TARGET_LABELS[kind]} not run in "${id}"`
  return `${TARGET_LABELS[kind]} in "${id}" ${t.status}${t.reason !== undefined ? `: ${t.reason}` : ''}`
}

/** The bars of the issue tracker (PRODUCT §8.1), each from ratios measured in this run. */
export function evaluateBars (scenarios: ScenarioResult[]): Bar[] {
  const find = (id: ScenarioId, kind: TargetKind): TargetResult | undefined => scenarios.find(s => s.id === id)?.targets.find(t => t.kind === kind)
  // The same gateway's passthrough route, measured in the scenario's own interleaved rounds; the
  // passthrough scenario's gateway only when that was not measured (e.g. --targets without it).
  const passthroughBeside = (id: ScenarioId): [ScenarioId, TargetKind] =>
    rpsOf(find(id, 'gateway-pass')) !== undefined ? [id, 'gateway-pass'] : ['passthrough', 'gateway']
  const defs: Array<{ name: string, num: [ScenarioId, TargetKind], den: [ScenarioId, TargetKind], min: number }> = [
    { name: 'passthrough ≥ 0.9× undici proxy', num: ['passthrough', 'gateway'], den: ['passthrough', 'undici'], min: 0.9 },
    { name: 'passthrough ≥ 1.3× fastify + reply-from', num: ['passthrough', 'gateway'], den: ['passthrough', 'fastify'], min: 1.3 },
    { name: 'pub/sub route ≥ 0.8× bare pub/sub server', num: ['redis', 'gateway'], den: ['redis', 'bare-pubsub'], min: 0.8 },
    { name: 'streams route ≥ 0.6× bare pub/sub server', num: ['stream', 'gateway'], den: ['stream', 'bare-pubsub'], min: 0.6 },
    { name: 'cache hit ≥ 2× passthrough', num: ['cache', 'gateway'], den: passthroughBeside('cache'), min: 2 },
    { name: 'JWT + rate limit ≥ 0.8× passthrough', num: ['jwt', 'gateway'], den: passthroughBeside('jwt'), min: 0.8 }
  ]
  return defs.map(d => {
    const a = find(...d.num)
    const b = find(...d.den)
    const ra = rpsOf(a)
    const rb = rpsOf(b)
    if (ra === undefined || rb === undefined || rb === 0) {
      const missing = ra === undefined ? whyMissing(scenarios, ...d.num) : whyMissing(scenarios, ...d.den)
      // A gateway that started but answered wrongly fails the bar; anything not run is skipped.
      const failed = (ra === undefined && a?.status === 'failed') || (rb === undefined && d.den[1] === 'gateway' && b?.status === 'failed')
      return { name: d.name, status: failed ? 'FAIL' : 'SKIPPED', min: d.min, detail: missing }
    }
    const r = ra / rb
    const errs = [a!, b!].map(errorsOf).reduce((x, y) => x + y.non2xx + y.errors, 0)
    // Beside a bar against another proxy: where the featureless proxy on the gateway's own
    // stack stood against the same anchor in the same rounds (the bound; docs/performance.md).
    const floor = d.num[1] === 'gateway' && (d.den[1] === 'undici' || d.den[1] === 'fastify') ? rpsOf(find(d.num[0], 'floor')) : undefined
    return {
      name: d.name,
      status: r >= d.min ? 'PASS' : 'FAIL',
      ratio: r,
      min: d.min,
      detail: `${int(ra)} ÷ ${int(rb)} req/s${d.den[1] === 'gateway-pass' ? '; the passthrough route of the same gateway, in the same rounds' : ''}${floor !== undefined ? `; ${TARGET_LABELS.floor}: ${ratio(floor / rb)}, ${int(floor)} req/s` : ''}${errs > 0 ? ` (⚠ ${errs} non-2xx or socket errors during the runs)` : ''}`
    }
  })
}

const RATIO_COLUMNS: TargetKind[] = ['gateway-pass', 'direct', 'undici', 'floor', 'fastify', 'nginx', 'bare-pubsub']

/**
 * `--baseline`: the gateway against the other checkout's, round by round. In each round the two
 * ran one after the other, so a round's ratio is the fairest pairing the run has; the median and
 * range of those ratios say how much of a difference is the change and how much the machine.
 */
export function baselineTable (scenarios: ScenarioResult[]): string[] {
  const rows: string[] = []
  for (const s of scenarios) {
    const gw = s.targets.find(t => t.kind === 'gateway')
    const base = s.targets.find(t => t.kind === 'gateway-baseline')
    if (gw?.status !== 'ok' || base?.status !== 'ok') continue
    const n = Math.min(gw.samples.length, base.samples.length)
    if (n === 0) continue
    const rps: number[] = []
    const cpu: number[] = []
    for (let i = 0; i < n; i++) {
      rps.push(gw.samples[i]!.rps / base.samples[i]!.rps)
      cpu.push(gw.samples[i]!.cpuUsPerReq / base.samples[i]!.cpuUsPerReq)
    }
    const spread = (xs: number[]): string => `${dec(median(xs), 3)}×${n > 1 ? ` (${dec(Math.min(...xs), 3)}–${dec(Math.max(...xs), 3)})` : ''}`
    rows.push(`| ${cell(s.title)} | ${spread(rps)} | ${spread(cpu)} | ${dec(median(gw.samples.map(x => x.cpuUsPerReq)), 1)} | ${dec(median(base.samples.map(x => x.cpuUsPerReq)), 1)} |`)
  }
  if (rows.length === 0) return []
  return [
    '## Against the baseline', '',
    'This checkout\'s gateway divided by the baseline\'s (`--baseline`), round by round: median (min–max) of the rounds\' ratios. req/s above 1 and CPU below 1 mean this checkout is faster.', '',
    '| Scenario | req/s ÷ baseline | CPU µs/req ÷ baseline | CPU µs/req | baseline CPU µs/req |',
    '|---|--:|--:|--:|--:|',
    ...rows,
    ''
  ]
}

export function renderReport (info: RunInfo, scenarios: ScenarioResult[], bars: Bar[]): string {
  const out: string[] = []
  out.push(`# Switchyard benchmark — ${info.mode} run`, '')
  out.push(`${info.date} · commit ${info.commit} · Node ${info.node} · ${info.cpu} (${info.cores} cores)  `)
  out.push(`Load: ${info.tool}, ${info.connections} connections, ${info.warmupS} s warm-up + ${info.durationS} s measured × ${info.rounds} round${info.rounds === 1 ? '' : 's'}; figures are medians${info.rounds > 1 ? ' (min–max)' : ''} over rounds.  `)
  if (info.versions.length > 0) out.push(`${info.versions.join(' · ')}`)
  out.push('', '> Every process runs on this one machine, so absolute numbers move from run to run; the ratios between targets measured in the same run are the figures that count.', '')

  out.push('## Results', '')
  out.push('| Scenario | Target | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | gateway ÷ target |')
  out.push('|---|---|--:|--:|--:|--:|--:|--:|')
  for (const s of scenarios) {
    const gw = rpsOf(s.targets.find(t => t.kind === 'gateway'))
    for (const t of s.targets) {
      const label = TARGET_LABELS[t.kind]
      if (t.status !== 'ok') {
        out.push(`| ${cell(s.title)} | ${label} | ${cell(`${t.status}: ${t.reason ?? ''}`)} | | | | | |`)
        continue
      }
      const rps = t.samples.map(x => x.rps)
      const spread = t.samples.length > 1 ? ` (${int(Math.min(...rps))}–${int(Math.max(...rps))})` : ''
      const e = errorsOf(t)
      const warn = e.non2xx + e.errors > 0 ? ` ⚠ ${e.non2xx} non-2xx, ${e.errors} errors` : ''
      const r = t.kind === 'gateway' ? '—' : ratio(gw === undefined ? undefined : gw / rpsOf(t)!)
      out.push(`| ${cell(s.title)} | ${label} | ${int(median(rps))}${spread}${warn} | ${dec(median(t.samples.map(x => x.p50Ms)))} | ${dec(median(t.samples.map(x => x.p99Ms)))} | ${dec(median(t.samples.map(x => x.cpuUsPerReq)), 1)} | ${t.peakRssKb === undefined ? '—' : dec(t.peakRssKb / 1024, 1)} | ${r} |`)
    }
  }

  out.push('', '## Ratios', '', 'Gateway req/s divided by each target\'s req/s in the same scenario (1.00× = as fast; above 1 = the gateway is faster).', '')
  out.push(`| Scenario | gateway req/s | ${RATIO_COLUMNS.map(k => `÷ ${TARGET_LABELS[k]}`).join(' | ')} |`)
  out.push(`|---|--:|${RATIO_COLUMNS.map(() => '--:').join('|')}|`)
  for (const s of scenarios) {
    const gwT = s.targets.find(t => t.kind === 'gateway')
    const gw = rpsOf(gwT)
    const cols = RATIO_COLUMNS.map(k => {
      const t = s.targets.find(x => x.kind === k)
      if (t === undefined) return ''
      const r = rpsOf(t)
      if (r === undefined) return t.status
      return gw === undefined ? '—' : ratio(gw / r)
    })
    out.push(`| ${cell(s.title)} | ${gw === undefined ? (gwT?.status ?? 'not run') : int(gw)} | ${cols.join(' | ')} |`)
  }

  const vsBaseline = baselineTable(scenarios)
  if (vsBaseline.length > 0) out.push('', ...vsBaseline.slice(0, -1))

  out.push('', '## Bars (PRODUCT §8.1)', '')
  for (const b of bars) out.push(`- **${b.status}** ${b.name}${b.ratio !== undefined ? ` — measured ${barRatio(b.ratio, b.min)}` : ''} (${b.detail})`)

  const notes = [...info.notes]
  for (const s of scenarios) for (const t of s.targets) for (const n of t.notes) notes.push(`${s.id} / ${TARGET_LABELS[t.kind]}: ${n}`)
  if (notes.length > 0) {
    out.push('', '## Notes', '')
    for (const n of notes) out.push(`- ${n}`)
  }
  out.push('')
  return out.join('\n')
}
