/** Command-line options of `npm run bench` (docs/performance.md). */
import { existsSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import type { LoadTool } from './load.js'
import { QUICK_SCENARIOS, SCENARIO_IDS, type ScenarioId } from './scenarios.js'
import { which } from './setup.js'
import { TARGET_LABELS, type TargetKind } from './targets.js'

const USAGE = `Usage: npm run bench -- [options]

  --quick               short run (< 2 min): 1 s warm-up, 3 s, 1 round; ${QUICK_SCENARIOS.join(', ')}
  --duration <s>        measured seconds per round (default 10; quick 3)
  --warmup <s>          warm-up seconds before each measured window (default 2; quick 1)
  --rounds <n>          rounds, interleaved across targets (default 5; quick 1)
  --connections <n>     concurrent connections (default 50)
  --only <a,b,...>      scenarios: ${SCENARIO_IDS.join(', ')}
  --targets <a,b,...>   targets: gateway, gateway-pass, direct, undici, floor, fastify, nginx, bare-pubsub
  --baseline <dir>      also run the gateway of another checkout (a git worktree with node_modules) in every
                        scenario, same config and rounds: an A/B of two commits (target gateway-baseline)
  --load <tool>         autocannon (default) or wrk (when installed)
  --out <file>          report path (default bench/results/latest.md; soak: bench/results/soak.md)
  --soak                1,000,000 requests through the passthrough and the Redis route, RSS every 10%
  --no-pin              do not pin processes to CPUs (default: pinned with taskset when there are 2+ CPUs)
  --requests <n>        soak: requests per route (default 1000000)
`

/** Rounds of a full run: five, since one slow round of the VM could move a median of three past a bar. */
export const FULL_ROUNDS = 5
export interface Options {
  quick: boolean
  durationS: number
  warmupS: number
  rounds: number
  connections: number
  scenarios: ScenarioId[]
  targets?: Set<TargetKind>
  /** A checkout whose gateway CLI runs beside this one's (`gateway-baseline`). */
  baseline?: string
  tool: LoadTool
  out: string
  soak: boolean
  /** taskset CPU lists, or undefined when not pinning. */
  pinning: { sut: string, rest: string } | undefined
  requests: number
  notes: string[]
}

/** taskset CPU lists: the last half of the cores (at least one) for the process under test, the rest for everything else. */
export function cpuSplit (cpus: number): { sut: string, rest: string } {
  const sutCount = Math.max(1, Math.floor(cpus / 2))
  const first = cpus - sutCount
  return { sut: sutCount === 1 ? String(first) : `${first}-${cpus - 1}`, rest: first === 1 ? '0' : `0-${first - 1}` }
}

function fail (message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`)
  process.exit(2)
}

function positive (name: string, raw: string | undefined, fallback: number, integer: boolean): number {
  if (raw === undefined) return fallback
  const v = Number(raw)
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) fail(`--${name}: expected a positive ${integer ? 'integer' : 'number'}, got "${raw}"`)
  return v
}

export function parseOptions (): Options {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rounds: { type: 'string' },
        connections: { type: 'string' },
        only: { type: 'string' },
        targets: { type: 'string' },
        baseline: { type: 'string' },
        load: { type: 'string' },
        out: { type: 'string' },
        soak: { type: 'boolean' },
        'no-pin': { type: 'boolean' },
        requests: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (err) {
    fail((err as Error).message)
  }
  const v = parsed.values
  if (v.help === true) { process.stdout.write(USAGE); process.exit(0) }
  const quick = v.quick === true
  const soak = v.soak === true
  const notes: string[] = []
  let scenarios: ScenarioId[] = quick ? QUICK_SCENARIOS : [...SCENARIO_IDS]
  if (v.only !== undefined) {
    scenarios = v.only.split(',').map(s => s.trim()).filter(s => s !== '') as ScenarioId[]
    for (const s of scenarios) if (!(SCENARIO_IDS as readonly string[]).includes(s)) fail(`--only: unknown scenario "${s}"`)
  }
  let targets: Set<TargetKind> | undefined
  if (v.targets !== undefined) {
    targets = new Set(v.targets.split(',').map(s => s.trim()).filter(s => s !== '') as TargetKind[])
    for (const t of targets) if (!(t in TARGET_LABELS)) fail(`--targets: unknown target "${t}"`)
  }
  let baseline: string | undefined
  if (v.baseline !== undefined) {
    baseline = resolve(v.baseline)
    if (!existsSync(join(baseline, 'packages/gateway/bin/switchyard.js'))) fail(`--baseline: ${baseline} has no packages/gateway/bin/switchyard.js (a checkout of this repository, e.g. git worktree add ../base HEAD~1, then cp -a node_modules ../base/)`)
    if (!existsSync(join(baseline, 'node_modules'))) fail(`--baseline: ${baseline} has no node_modules (cp -a node_modules ${baseline}/, or npm install there)`)
  }
  let tool: LoadTool = 'autocannon'
  if (v.load !== undefined) {
    if (v.load !== 'autocannon' && v.load !== 'wrk') fail(`--load: expected autocannon or wrk, got "${v.load}"`)
    tool = v.load
    if (tool === 'wrk' && which('wrk') === undefined) { notes.push('--load wrk: wrk is not on PATH; used autocannon'); tool = 'autocannon' }
    if (tool === 'wrk' && soak) { notes.push('soak counts requests, which wrk cannot: used autocannon'); tool = 'autocannon' }
  }
  let pinning: { sut: string, rest: string } | undefined
  const cpus = availableParallelism()
  if (v['no-pin'] !== true) {
    if (cpus < 2) notes.push('one CPU: processes not pinned')
    else if (which('taskset') === undefined) notes.push('taskset is not on PATH: processes not pinned')
    else {
      pinning = cpuSplit(cpus)
      notes.push(`pinned with taskset: the process under test on CPU ${pinning.sut}; backend, Redis, Redis service and load generator on CPU ${pinning.rest}`)
    }
  }
  const defaultOut = soak ? 'bench/results/soak.md' : 'bench/results/latest.md'
  const out = v.out ?? defaultOut
  return {
    quick,
    durationS: positive('duration', v.duration, quick ? 3 : 10, false),
    warmupS: v.warmup === '0' ? 0 : positive('warmup', v.warmup, quick ? 1 : 2, false),
    rounds: positive('rounds', v.rounds, quick ? 1 : FULL_ROUNDS, true),
    connections: positive('connections', v.connections, 50, true),
    scenarios,
    targets,
    baseline,
    tool,
    out: isAbsolute(out) ? out : join(process.cwd(), out),
    soak,
    pinning,
    requests: positive('requests', v.requests, 1_000_000, true),
    notes
  }
}
