/**
 * Hooks are user code: they may be async, and a hook that throws gives a 500
 * with a logged reason (PRODUCT §3.8) and affects nothing else.
 */
import { GatewayError } from '@switchyard/protocol'
import type { GatewayRequest } from './types.js'

export async function runHook<T> (name: string, greq: GatewayRequest, call: () => T | Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    greq.log.error({ reqId: greq.id, err, hook: name }, `hook ${name} threw`)
    throw new GatewayError('GW_ERR_HOOK_FAILED', { cause: err, data: { hook: name } })
  }
}

/** For hooks whose result nobody waits for (onError): run, log a throw, never reject. */
export function fireHook (name: string, greq: GatewayRequest, call: () => unknown): void {
  try {
    const r = call()
    if (r instanceof Promise) r.catch((err: unknown) => greq.log.error({ reqId: greq.id, err, hook: name }, `hook ${name} threw`))
  } catch (err) {
    greq.log.error({ reqId: greq.id, err, hook: name }, `hook ${name} threw`)
  }
}
