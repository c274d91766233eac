/**
 * `perf stat -x,` output, as bench/syscalls.ts reads it.
 */

/**
 * Reads `perf stat -x,`'s lines ("count,unit,event,run time,percent,…") into
 * event → count. A `syscalls:sys_enter_<name>` event is keyed by the call's
 * name alone; lines whose count is not a number ("<not counted>",
 * "<not supported>") and perf's other output are left out.
 */
export function parsePerfStat (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const [count, , event] = line.split(',')
    if (event === undefined || count === undefined || !/^\d+$/.test(count)) continue
    out.set(event.replace(/^syscalls:sys_enter_/, ''), Number(count))
  }
  return out
}
