import type { Logger } from './types.js'

const noop = (): void => {}

/** The default logger: discards everything (the SDK never writes to the console by itself). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/** An error as a log field: message and code, never the payload that caused it. */
export function errField (err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return code === undefined ? { message: err.message, name: err.name } : { message: err.message, name: err.name, code }
  }
  return { message: String(err) }
}
