/**
 * The processes under test: the gateway (through its CLI, with a config
 * generated from configs/gateway.template.json) and the anchors. Each start
 * resolves with a running target or throws an Error whose message is the skip reason.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { startNginx } from '../anchors/nginx.js'
import { JWT_SECRET, REQUEST_CHANNEL } from './constants.js'
import { failureReason, freePort, ROOT, spawnChild, spawnTs, stopChild, waitForLine, type Child } from './procs.js'

/**
 * `gateway-pass` is not a process of its own: it is the passthrough route (`/pass`) of the
 * scenario's own gateway, measured in the same interleaved rounds, so that the bars written
 * as a ratio to the passthrough (cache hit, JWT + rate limit) compare two windows minutes
 * apart on one process rather than two scenarios far apart in the run.
 */
export type TargetKind = 'gateway' | 'gateway-pass' | 'gateway-baseline' | 'direct' | 'undici' | 'floor' | 'fastify' | 'nginx' | 'bare-pubsub'

export const TARGET_LABELS: Record<TargetKind, string> = {
  gateway: 'Switchyard gateway',
  'gateway-pass': 'same gateway, passthrough',
  'gateway-baseline': 'gateway, baseline',
  direct: 'backend, direct',
  undici: 'undici proxy',
  floor: 'undici dispatch floor',
  fastify: 'fastify + reply-from',
  nginx: 'nginx proxy_pass',
  'bare-pubsub': 'bare pub/sub server'
}

export interface Running {
  kind: TargetKind
  /** Base URL, e.g. http://127.0.0.1:41234 */
  base: string
  /** The process whose CPU and memory are measured (with its descendants). */
  pid: number
  /** Present when the harness owns the process for this scenario only. */
  child?: Child
  notes: string[]
}

export interface HarnessEnv {
  tmp: string
  backend: string
  backendPid: number
  redisUrl?: string
  nginxBin?: string
  gatewayBin: string
  /** `--baseline <dir>`: another checkout's gateway CLI, run as the `gateway-baseline` target. */
  baselineBin?: string
}

const LISTENING = /listening on (https?:\/\/\S+)/
const START_TIMEOUT_MS = 30_000

/** The template with placeholders filled in, as an object. */
export function gatewayConfig (env: HarnessEnv, routes: string[], withLogging: boolean): Record<string, unknown> {
  const raw = readFileSync(join(ROOT, 'bench/configs/gateway.template.json'), 'utf8')
  const values: Record<string, string> = { REDIS_URL: env.redisUrl ?? '', BACKEND: env.backend, JWT_SECRET }
  const filled = raw.replace(/\$\{([A-Z_]+)\}/g, (_m, name: string) => JSON.stringify(values[name] ?? '').slice(1, -1))
  const config = JSON.parse(filled) as { redis?: unknown, logging?: unknown, http: { routes: Record<string, unknown> } }
  const all = config.http.routes
  config.http.routes = Object.fromEntries(routes.map(r => {
    if (all[r] === undefined) throw new Error(`bench/configs/gateway.template.json has no route ${r}`)
    return [r, all[r]]
  }))
  if (env.redisUrl === undefined) delete config.redis
  if (!withLogging) delete config.logging
  return config
}

/**
 * Starts the gateway CLI with only `routes`; a start failure becomes the Error's message.
 * `bin` is this checkout's CLI, or the baseline's (`--baseline`), which runs the same config.
 */
export async function startGateway (env: HarnessEnv, name: string, routes: string[], bin = env.gatewayBin, kind: 'gateway' | 'gateway-baseline' = 'gateway'): Promise<Running> {
  if (!existsSync(bin)) throw new Error(`${bin} does not exist yet`)
  const notes: string[] = []
  for (const withLogging of [true, false]) {
    const file = join(env.tmp, `${kind}-${name}${withLogging ? '' : '-nolog'}.json`)
    writeFileSync(file, JSON.stringify(gatewayConfig(env, routes, withLogging), null, 2))
    const port = await freePort()
    const child = spawnChild(`${kind}(${name})`, process.execPath, [bin, 'start', '-c', file, '--port', String(port)], { role: 'sut' })
    try {
      const m = await waitForLine(child, LISTENING, START_TIMEOUT_MS)
      return { kind, base: m[1]!.replace(/\/$/, ''), pid: child.pid, child, notes }
    } catch (err) {
      await stopChild(child)
      const reason = failureReason(child)
      if (withLogging && /\blogging\b/.test(reason) && !/not supported yet/.test(reason)) {
        notes.push(`the gateway rejected the logging key (${reason}); ran with its default logging`)
        continue
      }
      throw new Error(child.isDone() ? reason : (err as Error).message)
    }
  }
  throw new Error('the gateway did not start')
}

async function startTs (kind: TargetKind, file: string, args: string[]): Promise<Running> {
  const child = spawnTs(kind, file, args, { role: 'sut' })
  try {
    const m = await waitForLine(child, LISTENING, START_TIMEOUT_MS)
    return { kind, base: m[1]!, pid: child.pid, child, notes: [] }
  } catch (err) {
    await stopChild(child)
    throw err
  }
}

/** The proxy anchors' scripts, each started with `--upstream <backend>` (also by bench/callgrind.ts). */
export const PROXY_ANCHORS = {
  undici: 'bench/anchors/undici-proxy.ts',
  floor: 'bench/anchors/dispatch-floor.ts',
  fastify: 'bench/anchors/fastify-reply-from.ts'
} as const satisfies Partial<Record<TargetKind, string>>

/** Starts one anchor (the direct backend is already running and shared). */
export async function startAnchor (env: HarnessEnv, kind: Exclude<TargetKind, 'gateway' | 'gateway-pass' | 'gateway-baseline'>): Promise<Running> {
  switch (kind) {
    case 'direct':
      return { kind, base: env.backend, pid: env.backendPid, notes: [] }
    case 'undici':
    case 'floor':
    case 'fastify':
      return await startTs(kind, PROXY_ANCHORS[kind], ['--upstream', env.backend])
    case 'bare-pubsub':
      if (env.redisUrl === undefined) throw new Error('no Redis (redis-server not on PATH)')
      return await startTs(kind, 'bench/anchors/bare-pubsub.ts', ['--redis', env.redisUrl, '--channel', REQUEST_CHANNEL])
    case 'nginx': {
      if (env.nginxBin === undefined) throw new Error('nginx not on PATH')
      const { child, port } = await startNginx(env.nginxBin, join(env.tmp, `nginx-${Date.now()}`), env.backend.replace(/^http:\/\//, ''))
      return { kind, base: `http://127.0.0.1:${port}`, pid: child.pid, child, notes: [] }
    }
  }
}

/** The JWT scenario's request headers: a bearer token signed with the benchmark's HS256 secret, valid for a day. */
export async function jwtHeaders (): Promise<Record<string, string>> {
  const token = await new SignJWT({ sub: 'bench-user', scope: 'bench' })
    .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('24h')
    .sign(new TextEncoder().encode(JWT_SECRET))
  return { authorization: `Bearer ${token}` }
}

/** One target started by hand rather than by the harness's rounds: node's arguments after its own flags, the path to load, and the headers to send. */
export interface HandTarget { args: string[], path: string, headers: Record<string, string> }

/**
 * How bench/callgrind.ts and bench/alloc.ts start one target, each putting its
 * own node flags (a profiler's) before `args`: the gateway CLI serving only
 * `route` of the template (logging at info to /dev/null; `/jwt` with the
 * scenario's bearer token), or a proxy anchor in front of the backend (`/data`).
 */
export async function targetByHand (env: HarnessEnv, target: string, route: string): Promise<HandTarget> {
  if (target === 'gateway') {
    const config = join(env.tmp, 'gateway.json')
    writeFileSync(config, JSON.stringify(gatewayConfig(env, [route], true)))
    return {
      args: [env.gatewayBin, 'start', '-c', config, '--port', String(await freePort())],
      path: route,
      headers: route === '/jwt' ? await jwtHeaders() : {}
    }
  }
  if (Object.hasOwn(PROXY_ANCHORS, target)) {
    return { args: ['--import', 'tsx', PROXY_ANCHORS[target as keyof typeof PROXY_ANCHORS], '--upstream', env.backend], path: '/data', headers: {} }
  }
  throw new Error(`--target must be gateway, ${Object.keys(PROXY_ANCHORS).join(', ')}, not ${target}`)
}
