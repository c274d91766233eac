/**
 * CPU time and memory of a process and its descendants, from /proc (Linux).
 * CPU: utime + stime of /proc/<pid>/stat (all threads of the process).
 * Memory: VmHWM (peak RSS) and VmRSS of /proc/<pid>/status; the peak can be
 * reset with `echo 5 > /proc/<pid>/clear_refs`, so each measured window gets its own peak.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

let ticksPerSecond: number | undefined
/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux). */
export function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { ticksPerSecond = 100 }
  }
  return ticksPerSecond
}

/** Fields after the `(comm)` of /proc/<pid>/stat; index 0 is field 3 (state). */
function statFields (pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return s.slice(s.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The pid and every live descendant of it. */
export function processTree (pid: number): number[] {
  const parents = new Map<number, number[]>()
  let entries: string[] = []
  try { entries = readdirSync('/proc') } catch { return [pid] }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    const f = statFields(Number(e))
    if (f === undefined) continue
    const ppid = Number(f[1])
    const list = parents.get(ppid) ?? []
    list.push(Number(e))
    parents.set(ppid, list)
  }
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0 && out.length < 1000) {
    const p = queue.shift()!
    out.push(p)
    queue.push(...(parents.get(p) ?? []))
  }
  return out
}

/** User and system CPU seconds used so far by one process (all its threads). */
export function cpuTimes (pid: number): { user: number, system: number } {
  const f = statFields(pid)
  if (f === undefined) return { user: 0, system: 0 }
  return { user: Number(f[11]) / clockTicks(), system: Number(f[12]) / clockTicks() }
}

/** CPU seconds (user + system) used so far by the given processes. */
export function cpuSeconds (pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    const f = statFields(pid)
    if (f !== undefined) ticks += Number(f[11]) + Number(f[12]) // utime, stime (fields 14, 15)
  }
  return ticks / clockTicks()
}

function statusKb (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1])
  } catch {
    return 0
  }
}

/** Sum of the peak RSS (VmHWM) of the processes, in KiB. */
export function peakRssKb (pids: number[]): number {
  return pids.reduce((sum, pid) => sum + statusKb(pid, 'VmHWM'), 0)
}

/** Sum of the current RSS (VmRSS) of the processes, in KiB. */
export function rssKb (pids: number[]): number {
  return pids.reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0)
}

/** Resets the peak RSS of the processes; false when the kernel refused. */
export function resetPeakRss (pids: number[]): boolean {
  let ok = true
  for (const pid of pids) {
    try { writeFileSync(`/proc/${pid}/clear_refs`, '5') } catch { ok = false }
  }
  return ok
}
