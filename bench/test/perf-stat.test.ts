/**
 * bench/syscalls.ts's reading of `perf stat -x,` (the tool itself needs perf
 * and root, so only its parsing is tested here).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parsePerfStat } from '../lib/perf-stat.js'

test('perf stat: counts by event, calls by name alone, uncounted and foreign lines left out', () => {
  const text = [
    '412345,,raw_syscalls:sys_enter,8011234567,100.00,,',
    '1432,,exceptions:page_fault_user,8011234567,100.00,,',
    '200173,,syscalls:sys_enter_read,8011234567,100.00,,',
    '100002,,syscalls:sys_enter_writev,8011234567,100.00,,',
    '<not counted>,,syscalls:sys_enter_kexec_load,0,0.00,,',
    '<not supported>,,syscalls:sys_enter_foo,0,0.00,,',
    'Some events weren\'t counted. Try disabling the NMI watchdog:',
    ''
  ].join('\n')
  assert.deepEqual([...parsePerfStat(text)], [
    ['raw_syscalls:sys_enter', 412345],
    ['exceptions:page_fault_user', 1432],
    ['read', 200173],
    ['writev', 100002]
  ])
})
