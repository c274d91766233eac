import { pino, type Logger } from 'pino'
import type { GatewayConfig } from './config/types.js'

/** pino JSON logs: to stdout, or to `logging.destination` (asynchronous writes). */
export function createLogger (config: GatewayConfig): Logger {
  const level = config.silent === true ? 'silent' : config.logging?.level ?? 'info'
  const dest = config.logging?.destination
  return pino({ level, base: { name: 'switchyard' } }, dest === undefined ? pino.destination({ fd: 1, sync: false }) : pino.destination({ dest, sync: false, mkdir: true }))
}
