/**
 * The report's bars (bench/lib/report.ts): a ratio is printed with enough
 * decimals to agree with its verdict.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { barRatio, evaluateBars, renderReport, type RunInfo, type Sample, type ScenarioResult, type TargetResult } from '../lib/report.js'
import type { TargetKind } from '../lib/targets.js'

test('a ratio that two decimals would round onto the bar gets a third', () => {
  assert.equal(barRatio(9672 / 16215, 0.6), '0.596×') // run 7's streams: 0.60× beside FAIL before
  assert.equal(barRatio(1.2996, 1.3), '1.2996×')
  assert.equal(barRatio(0.8949, 0.9), '0.89×')
  assert.equal(barRatio(0.8996, 0.9), '0.8996×')
  assert.equal(barRatio(0.97, 0.9), '0.97×')
  assert.equal(barRatio(0.6, 0.6), '0.60×')
  assert.equal(barRatio(0.6049, 0.6), '0.60×')
  assert.equal(barRatio(Number.NaN, 0.6), '—')
})

function target (kind: TargetKind, rps: number): TargetResult {
  const sample: Sample = { rps, p50Ms: 2, p99Ms: 8, cpuUsPerReq: 50, responses: rps * 10, ok: rps * 10, non2xx: 0, errors: 0 }
  return { kind, status: 'ok', samples: [sample], notes: [] }
}

const info: RunInfo = { mode: 'full', date: '2026-12-06T03:55:49Z', commit: '4a6a341', node: 'v20.20.2', cpu: 'AMD EPYC', cores: 2, tool: 'wrk', durationS: 10, warmupS: 2, rounds: 1, connections: 50, versions: [], notes: [] }

test('the report prints a bar with its verdict and a ratio that agrees with it', () => {
  const scenarios: ScenarioResult[] = [
    { id: 'stream', title: 'Redis Streams service', targets: [target('gateway', 9672), target('bare-pubsub', 16215)] }
  ]
  const bars = evaluateBars(scenarios)
  const streams = bars.find(b => b.name.startsWith('streams'))!
  assert.equal(streams.status, 'FAIL')
  assert.equal(streams.min, 0.6)
  const line = renderReport(info, scenarios, bars).split('\n').find(l => l.includes('streams route'))
  assert.equal(line, '- **FAIL** streams route ≥ 0.6× bare pub/sub server — measured 0.596× (9,672 ÷ 16,215 req/s)')
})

test('a passthrough bar against another proxy shows where the featureless floor stood against it', () => {
  const scenarios: ScenarioResult[] = [
    { id: 'passthrough', title: 'HTTP passthrough', targets: [target('gateway', 11672), target('undici', 13282), target('floor', 14000), target('fastify', 10809)] }
  ]
  const bars = evaluateBars(scenarios)
  const fastify = bars.find(b => b.name.includes('fastify'))!
  assert.equal(fastify.status, 'FAIL')
  assert.equal(fastify.detail, '11,672 ÷ 10,809 req/s; undici dispatch floor: 1.30×, 14,000 req/s')
  const undici = bars.find(b => b.name.includes('undici proxy'))!
  assert.equal(undici.detail, '11,672 ÷ 13,282 req/s; undici dispatch floor: 1.05×, 14,000 req/s')
  // Without the floor in the run, the detail is the ratio alone.
  const without = evaluateBars([{ id: 'passthrough', title: 'HTTP passthrough', targets: [target('gateway', 11672), target('fastify', 10809)] }])
  assert.equal(without.find(b => b.name.includes('fastify'))!.detail, '11,672 ÷ 10,809 req/s')
})

test('with a baseline, the report pairs the two gateways round by round', () => {
  const rounds = (kind: TargetKind, rps: number[], cpu: number[]): TargetResult => ({
    kind,
    status: 'ok',
    samples: rps.map((r, i) => ({ rps: r, p50Ms: 2, p99Ms: 8, cpuUsPerReq: cpu[i]!, responses: r * 10, ok: r * 10, non2xx: 0, errors: 0 })),
    notes: []
  })
  // Round 2 was slow for both: paired by round, the ratios stay put where the medians of each would not.
  const scenarios: ScenarioResult[] = [{
    id: 'passthrough',
    title: 'HTTP passthrough',
    targets: [rounds('gateway', [11000, 5500, 10800], [50, 100, 52]), rounds('gateway-baseline', [10000, 5000, 10000], [55, 110, 57.2])]
  }]
  const md = renderReport({ ...info, rounds: 3 }, scenarios, evaluateBars(scenarios))
  const row = md.split('\n').find(l => l.startsWith('| HTTP passthrough | 1.'))
  assert.equal(row, '| HTTP passthrough | 1.100× (1.080–1.100) | 0.909× (0.909–0.909) | 52.0 | 57.2 |')
  assert.ok(md.includes('## Against the baseline'))
  // Without one, no such section.
  const plain: ScenarioResult[] = [{ id: 'passthrough', title: 'HTTP passthrough', targets: [target('gateway', 11000)] }]
  assert.ok(!renderReport(info, plain, evaluateBars(plain)).includes('baseline'))
})
