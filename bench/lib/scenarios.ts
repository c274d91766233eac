/**
 * The scenarios: what the gateway route is, which anchors run beside it, and
 * how one response is checked before anything is measured.
 */
import { BIG_BYTES } from './constants.js'
import type { TargetKind } from './targets.js'

export const SCENARIO_IDS = ['passthrough', 'redis', 'stream', 'fanout', 'cache', 'jwt', 'big'] as const
export type ScenarioId = typeof SCENARIO_IDS[number]

/** What --quick runs: the scenarios the bars need (fan-out and the 1 MiB body are left out). */
export const QUICK_SCENARIOS: ScenarioId[] = ['passthrough', 'redis', 'stream', 'cache', 'jwt']

export interface Scenario {
  id: ScenarioId
  title: string
  /** The route of configs/gateway.template.json the gateway serves. */
  route: string
  /** The path requested from the anchors (the backend's own path for HTTP proxies). */
  anchorPath: string
  anchors: Array<Exclude<TargetKind, 'gateway' | 'gateway-baseline'>>
  /** Which mode of the Redis service the gateway's route needs. */
  service?: 'pubsub' | 'stream'
  /** Sends `authorization: Bearer <HS256 token>`. */
  jwt?: boolean
  /** Checks the gateway's answer; returns what is wrong, or undefined. */
  checkGateway: (status: number, body: Buffer) => string | undefined
}

function json (status: number, body: Buffer, pred: (v: Record<string, unknown>) => boolean, expected: string): string | undefined {
  if (status !== 200) return `status ${status}: ${body.toString('utf8', 0, 200)}`
  let v: unknown
  try { v = JSON.parse(body.toString('utf8')) } catch { return `not JSON: ${body.toString('utf8', 0, 200)}` }
  if (typeof v !== 'object' || v === null || !pred(v as Record<string, unknown>)) return `expected ${expected}, got ${body.toString('utf8', 0, 200)}`
  return undefined
}

/** The backend's (and the Redis service's) ~100-byte document. */
export const checkData = (status: number, body: Buffer): string | undefined => json(status, body, v => v.id === 'bench-0001', 'the bench document')

const checkBig = (status: number, body: Buffer): string | undefined =>
  status !== 200 ? `status ${status}` : body.length !== BIG_BYTES ? `expected ${BIG_BYTES} bytes, got ${body.length}` : undefined

export const SCENARIOS: Record<ScenarioId, Scenario> = {
  passthrough: {
    id: 'passthrough',
    title: 'HTTP passthrough (1 service, ~100 B JSON)',
    route: '/pass',
    anchorPath: '/data',
    anchors: ['direct', 'undici', 'floor', 'fastify', 'nginx'],
    checkGateway: checkData
  },
  redis: {
    id: 'redis',
    title: 'Redis pub/sub service',
    route: '/redis',
    anchorPath: '/redis',
    anchors: ['direct', 'bare-pubsub'],
    service: 'pubsub',
    checkGateway: checkData
  },
  stream: {
    id: 'stream',
    title: 'Redis Streams service',
    route: '/stream',
    anchorPath: '/stream',
    anchors: ['direct', 'bare-pubsub'],
    service: 'stream',
    checkGateway: checkData
  },
  fanout: {
    id: 'fanout',
    title: 'Fan-out: 3 HTTP services merged',
    route: '/fan',
    anchorPath: '/data',
    anchors: ['direct'],
    checkGateway: (s, b) => json(s, b, v => v.a === 1 && v.c === 3 && (v.b as Record<string, unknown> | undefined)?.b === 2, '{a: 1, c: 3, b: {b: 2}}')
  },
  cache: {
    id: 'cache',
    title: 'Cache hit',
    route: '/cached',
    anchorPath: '/data',
    anchors: ['gateway-pass', 'direct'],
    checkGateway: checkData
  },
  jwt: {
    id: 'jwt',
    title: 'JWT (HS256) + rate limit',
    route: '/jwt',
    anchorPath: '/data',
    anchors: ['gateway-pass', 'direct'],
    jwt: true,
    checkGateway: checkData
  },
  big: {
    id: 'big',
    title: '1 MiB streamed body',
    route: '/big',
    anchorPath: '/big',
    anchors: ['direct', 'undici', 'fastify', 'nginx'],
    checkGateway: checkBig
  }
}

/** The check for an anchor's answer in a scenario. */
export function checkAnchor (scenario: Scenario): (status: number, body: Buffer) => string | undefined {
  return scenario.id === 'big' ? checkBig : checkData
}

/** GETs `url` twice (the second is a cache hit where there is a cache) and checks both answers. */
export async function verify (url: string, headers: Record<string, string>, check: (status: number, body: Buffer) => string | undefined): Promise<string | undefined> {
  for (let i = 0; i < 2; i++) {
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(15_000) })
      const problem = check(res.status, Buffer.from(await res.arrayBuffer()))
      if (problem !== undefined) return problem
    } catch (err) {
      return `request failed: ${(err as Error).message}`
    }
  }
  return undefined
}
