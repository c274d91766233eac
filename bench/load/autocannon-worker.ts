/**
 * The load generator, in its own process: autocannon's programmatic API.
 * Reads a JSON spec from argv[2]; runs the warm-up (not measured), then
 * `repeat` measured runs. Around each measured run it prints `measure-start`
 * and `measure-end <json>` so the harness can read the proxy's CPU counters
 * at the edges of the same window. Latencies are recorded here with
 * sub-millisecond precision (autocannon's own histogram rounds to whole ms).
 */
import autocannon from 'autocannon'
import { exitWithParent } from '../lib/child.js'

export interface WorkerSpec {
  url: string
  connections: number
  /** Seconds per measured run, unless `amount` is set. */
  durationS?: number
  /** Requests per measured run (soak). */
  amount?: number
  /** Measured runs, each reported on its own line. @default 1 */
  repeat?: number
  warmupS: number
  headers?: Record<string, string>
  method?: string
  /** Per-request timeout in seconds. @default 10 */
  timeoutS?: number
}

export interface WorkerResult {
  responses: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  elapsedS: number
  p50Ms: number
  p99Ms: number
  bytes: number
}

/** Latencies of one run; bounded so a soak cannot grow it without limit. */
const MAX_SAMPLES = 4_000_000

function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]!
}

async function run (spec: WorkerSpec, durationS: number | undefined, amount: number | undefined): Promise<WorkerResult> {
  let samples = new Float64Array(1 << 16)
  let n = 0
  let ok = 0
  let bytes = 0
  const started = process.hrtime.bigint()
  let last = started
  const options: autocannon.Options = {
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    timeout: spec.timeoutS ?? 10,
    method: (spec.method ?? 'GET') as 'GET',
    headers: spec.headers ?? {},
    ...(amount !== undefined ? { amount } : { duration: durationS ?? 10 })
  }
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err: unknown, res: autocannon.Result) => { if (err !== null && err !== undefined) reject(err); else resolve(res) })
    instance.on('response', (_client, statusCode, resBytes, responseTime) => {
      last = process.hrtime.bigint()
      if (statusCode >= 200 && statusCode < 300) ok++
      bytes += resBytes
      if (n === samples.length && n < MAX_SAMPLES) {
        const bigger = new Float64Array(Math.min(MAX_SAMPLES, samples.length * 2))
        bigger.set(samples)
        samples = bigger
      }
      if (n < samples.length) samples[n++] = responseTime
    })
  })
  // Up to the last response: autocannon notices that `amount` is reached only on its next tick.
  const elapsedS = Number((n > 0 ? last : process.hrtime.bigint()) - started) / 1e9
  const sorted = samples.subarray(0, n).sort()
  return {
    responses: result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'],
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    elapsedS,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    bytes
  }
}

const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec
exitWithParent()
if (spec.warmupS > 0) await run(spec, spec.warmupS, undefined)
for (let i = 0; i < (spec.repeat ?? 1); i++) {
  process.stdout.write('measure-start\n')
  const r = await run(spec, spec.durationS, spec.amount)
  process.stdout.write(`measure-end ${JSON.stringify(r)}\n`)
}
process.exit(0)
