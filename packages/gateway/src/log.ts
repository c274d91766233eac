import { mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { pino, type Logger } from 'pino'
import type { GatewayConfig } from './config/types.js'

/** pino JSON logs: to stdout, or to `logging.destination` (asynchronous writes). */
export function createLogger (config: GatewayConfig): Logger {
  const level = config.silent === true ? 'silent' : config.logging?.level ?? 'info'
  const dest = config.logging?.destination
  if (dest === undefined) return pino({ level, base: { name: 'switchyard' } }, pino.destination({ fd: 1, sync: false }))
  // Opened here, synchronously: a destination still opening when the process exits (a config
  // refused at start) would make pino's final flush throw "sonic boom is not ready yet".
  mkdirSync(dirname(dest), { recursive: true })
  return pino({ level, base: { name: 'switchyard' } }, pino.destination({ fd: openSync(dest, 'a'), sync: false }))
}
