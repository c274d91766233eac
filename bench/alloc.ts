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
import { argValue } from './lib/child.js'
import { inspector, wrk } from './lib/by-hand.js'
import { freePort, installCleanup, ROOT, spawnChild, stopChild, waitForLine, type Child } from './lib/procs.js'
import { targetByHand } from './lib/targets.js'
import { startHarness, which } from './lib/setup.js'

const LISTENING = /listening on (https?:\/\/\S+)/

const target = argValue('target') ?? 'gateway'
const route = argValue('route') ?? '/pass'
const warmupSeconds = Number(argValue('warmup-seconds') ?? 4)
const seconds = Number(argValue('seconds') ?? 8)
const interval = Number(argValue('interval') ?? 128)
const top = Number(argValue('top') ?? 30)

interface ProfileNode { callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, selfSize: number, children: ProfileNode[] }

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
