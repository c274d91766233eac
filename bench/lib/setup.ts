/**
 * What every run shares: a temp directory, the backend, a private
 * redis-server on a free port (never the machine's 6379), and the Redis
 * service. `close()` stops every child and removes the temp directory.
 */
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { freePort, ROOT, spawnChild, spawnTs, stopAll, waitForLine, waitForPort } from './procs.js'
import type { HarnessEnv } from './targets.js'

export interface ServiceStatus {
  pubsub: string | null
  stream: string | null
  notes: string[]
}

export interface Harness {
  env: HarnessEnv
  /** Undefined when no Redis service was started. */
  service?: ServiceStatus
  notes: string[]
  versions: string[]
  close: () => Promise<void>
}

/** The absolute path of an executable on PATH, or undefined. */
export function which (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const p = join(dir, name)
    try { accessSync(p, constants.X_OK); return p } catch {}
  }
  return undefined
}

function firstLine (cmd: string, args: string[]): string | undefined {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
    return out.split('\n')[0]?.trim()
  } catch (err) {
    const e = err as { stderr?: string, stdout?: string }
    return (e.stdout ?? e.stderr ?? '').split('\n')[0]?.trim() || undefined
  }
}

/** A checkout as `commit 1a2b3c4`, with `and uncommitted changes` when its packages differ from it. */
export function describeCheckout (dir: string): string {
  try {
    const git = (args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim()
    const changed = git(['status', '--porcelain', '--', 'packages']) !== ''
    return `commit ${git(['rev-parse', '--short', 'HEAD'])}${changed ? ' and uncommitted changes' : ''}`
  } catch {
    return 'not a git checkout'
  }
}

function nginxVersion (bin: string): string | undefined {
  try {
    const r = execFileSync(bin, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
    return r.trim() || undefined
  } catch (err) {
    return (err as { stderr?: string }).stderr?.trim()
  }
}

/** Versions of what takes part, for the report's header. */
export function describeTools (env: HarnessEnv, tool: string): string[] {
  const v: string[] = []
  if (tool === 'wrk') {
    const w = firstLine('wrk', ['-v'])
    if (w !== undefined) v.push(w.split(' ').slice(0, 2).join(' '))
  } else {
    try { v.push(`autocannon ${(JSON.parse(readFileSync(join(ROOT, 'node_modules/autocannon/package.json'), 'utf8')) as { version: string }).version}`) } catch {}
  }
  const rs = which('redis-server')
  if (rs !== undefined && env.redisUrl !== undefined) {
    const m = /v=(\S+)/.exec(firstLine(rs, ['--version']) ?? '')
    if (m !== null) v.push(`redis-server ${m[1]}`)
  }
  if (env.nginxBin !== undefined) {
    const m = /nginx\/(\S+)/.exec(nginxVersion(env.nginxBin) ?? '')
    if (m !== null) v.push(`nginx ${m[1]}`)
  }
  return v
}

export interface SetupOptions {
  /** `--baseline <dir>`: a checkout whose gateway runs beside this one's. */
  baseline?: string | undefined
  needRedis: boolean
  serviceModes: Array<'pubsub' | 'stream'>
  needNginx: boolean
}

export async function startHarness (opts: SetupOptions): Promise<Harness> {
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-bench-'))
  // Also on Ctrl-C and errors, which end the process without reaching close().
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }))
  const notes: string[] = []
  const close = async (): Promise<void> => {
    await stopAll()
    rmSync(tmp, { recursive: true, force: true })
  }
  try {
    const backend = spawnTs('backend', 'bench/backend.ts', [], { role: 'rest' })
    const m = await waitForLine(backend, /listening on (http:\/\/\S+)/, 30_000)
    const env: HarnessEnv = {
      tmp,
      backend: m[1]!,
      backendPid: backend.pid,
      gatewayBin: join(ROOT, 'packages/gateway/bin/switchyard.js')
    }
    if (!existsSync(env.gatewayBin)) notes.push(`${env.gatewayBin} does not exist: gateway scenarios are skipped`)
    if (opts.baseline !== undefined) {
      env.baselineBin = join(opts.baseline, 'packages/gateway/bin/switchyard.js')
      notes.push(`baseline: the gateway of ${opts.baseline} (${describeCheckout(opts.baseline)}), same config, same rounds`)
    }

    if (opts.needNginx) {
      env.nginxBin = which('nginx')
      if (env.nginxBin === undefined) notes.push('nginx is not on PATH: the nginx anchor is skipped (apt-get install -y nginx to add it)')
    }

    let service: ServiceStatus | undefined
    if (opts.needRedis) {
      const bin = which('redis-server')
      if (bin === undefined) {
        notes.push('redis-server is not on PATH: Redis scenarios and the gateway\'s Redis features are skipped')
      } else {
        const port = await freePort()
        const redis = spawnChild('redis-server', bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { role: 'rest' })
        await waitForPort(port, 10_000, redis)
        env.redisUrl = `redis://127.0.0.1:${port}`
        if (opts.serviceModes.length > 0) {
          const svc = spawnTs('redis-service', 'bench/redis-service.ts', ['--redis', env.redisUrl, '--modes', opts.serviceModes.join(',')], { role: 'rest' })
          const ready = await waitForLine(svc, /^ready (\{.*\})$/, 30_000)
          service = JSON.parse(ready[1]!) as ServiceStatus
          const modes = opts.serviceModes.map(m => `${m === 'pubsub' ? 'pub/sub' : 'streams'} ${service![m] ?? 'unavailable'}`)
          notes.push(`Redis service: ${modes.join(', ')}${service.notes.length > 0 ? ` — ${service.notes.join('; ')}` : ''}`)
        }
      }
    }
    return { env, service, notes, versions: [], close }
  } catch (err) {
    await close()
    throw err
  }
}
