/**
 * Hooks are user code: they may be async, and a hook that throws gives a 500
 * with a logged reason (PRODUCT §3.8) and affects nothing else.
 */
import { GatewayError } from '@switchyard/protocol'
import type { Logger } from 'pino'

export async function runHook<T> (name: string, log: Logger, call: () => T | Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    log.error({ err, hook: name }, `hook ${name} threw`)
    throw new GatewayError('GW_ERR_HOOK_FAILED', { cause: err, data: { hook: name } })
  }
}

/** For hooks whose result nobody waits for (onError): run, log a throw, never reject. */
export function fireHook (name: string, log: Logger, call: () => unknown): void {
  try {
    const r = call()
    if (r instanceof Promise) r.catch((err: unknown) => log.error({ err, hook: name }, `hook ${name} threw`))
  } catch (err) {
    log.error({ err, hook: name }, `hook ${name} threw`)
  }
}
