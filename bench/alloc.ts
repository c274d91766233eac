/**
 * Bytes allocated per request, by allocation site: the sampling heap profile
 * V8 keeps through the inspector (`HeapProfiler.startSampling`), with the
 * objects that young- and old-generation collections freed kept in it, so it
 * counts every allocation and not only what is still alive at the end. The
 * target runs natively (not under valgrind); allocation per request hardly
 * moves with the VM's speed, so two targets, or two commits, compare well.
 *
 * Usage: node --import tsx bench/alloc.ts [--target gateway|undici|floor|fastify]
 *   [--route /pass] [--warmup-seconds 4] [--seconds 8] [--interval 128] [--top 30]
 * Needs `wrk`. The target is set up as in bench/callgrind.ts (the gateway
 * serves one route of configs/gateway.template.json, logging at info to
 * /dev/null; the anchors proxy `/data`), with `--inspect` on a free port.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { WebSocket } from 'undici'
import { argValue } from './lib/child.js'
import { freePort, installCleanup, ROOT, spawnChild, stopChild, waitForLine, type Child } from './lib/procs.js'
import { targetByHand } from './lib/targets.js'
import { startHarness, which } from './lib/setup.js'

const run = promisify(execFile)
const LISTENING = /listening on (https?:\/\/\S+)/

const target = argValue('target') ?? 'gateway'
const route = argValue('route') ?? '/pass'
const warmupSeconds = Number(argValue('warmup-seconds') ?? 4)
const seconds = Number(argValue('seconds') ?? 8)
const interval = Number(argValue('interval') ?? 128)
const top = Number(argValue('top') ?? 30)

interface ProfileNode { callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, selfSize: number, children: ProfileNode[] }

/** One inspector session over the target's WebSocket: `send` resolves with the command's result. */
async function inspector (port: number): Promise<{ send: (method: string, params?: object) => Promise<Record<string, unknown>>, close: () => void }> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<{ webSocketDebuggerUrl: string }>
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl)
  await new Promise((resolve, reject) => { ws.addEventListener('open', resolve); ws.addEventListener('error', reject) })
  let id = 0
  const pending = new Map<number, (result: Record<string, unknown>) => void>()
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number, result?: Record<string, unknown> }
    if (m.id !== undefined) { pending.get(m.id)?.(m.result ?? {}); pending.delete(m.id) }
  })
  return {
    send: async (method, params = {}) => await new Promise((resolve) => { const i = ++id; pending.set(i, resolve); ws.send(JSON.stringify({ id: i, method, params })) }),
    close: () => { ws.close() }
  }
}

/** wrk at 50 connections for `s` seconds; resolves with the number of requests it made. */
async function wrk (url: string, s: number, headers: Record<string, string>): Promise<number> {
  const args = ['-t1', '-c50', `-d${s}s`, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url]
  const { stdout } = await run('wrk', args)
  const m = /(\d+) requests in/.exec(stdout)
  if (m === null) throw new Error(`wrk printed no request count:\n${stdout}`)
  return Number(m[1])
}

async function main (): Promise<void> {
  if (which('wrk') === undefined) throw new Error('wrk is not on PATH (Debian: apt-get install -y wrk)')
  installCleanup()
  const h = await startHarness({ needRedis: target === 'gateway' && route !== '/pass', needNginx: false, serviceModes: [] })
  let sut: Child | undefined
  try {
    const inspect = await freePort()
    const { args, path, headers } = await targetByHand(h.env, target, route)
    sut = spawnChild(target, process.execPath, [`--inspect=127.0.0.1:${inspect}`, ...args], {})
    const url = (await waitForLine(sut, LISTENING, 30_000))[1]!.replace(/\/$/, '') + path
    await wrk(url, warmupSeconds, headers)
    const session = await inspector(inspect)
    try {
      await session.send('HeapProfiler.enable')
      await session.send('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
      const requests = await wrk(url, seconds, headers)
      const { profile } = await session.send('HeapProfiler.stopSampling') as { profile: { head: ProfileNode } }
      const bySite = new Map<string, number>()
      let total = 0
      const walk = (node: ProfileNode): void => {
        const f = node.callFrame
        if (node.selfSize > 0) {
          const where = f.url === '' ? '' : ` ${f.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '').replace(ROOT, '')}:${f.lineNumber + 1}:${f.columnNumber + 1}`
          const site = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`
          bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize)
          total += node.selfSize
        }
        for (const c of node.children) walk(c)
      }
      walk(profile.head)
      process.stdout.write(`\n${target} ${path}: ${requests.toLocaleString('en-US')} requests in ${seconds} s after ${warmupSeconds} s of warm-up\n`)
      process.stdout.write(`bytes allocated per request: ${Math.round(total / requests).toLocaleString('en-US')} (sampled every ${interval} bytes on average)\n\n`)
      for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        process.stdout.write(`${Math.round(bytes / requests).toLocaleString('en-US').padStart(7)}  ${site.slice(0, 140)}\n`)
      }
    } finally {
      session.close()
    }
  } finally {
    if (sut !== undefined) await stopChild(sut)
    await h.close()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`alloc: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
