/** Timers that never outlive what they wait for. */

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError'
}

/** `promise`, or a TimeoutError after `ms` milliseconds (the promise itself keeps running). */
export async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms`)), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves after `ms` milliseconds, or as soon as `stop` settles. */
export async function pause (ms: number, stop: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([new Promise<void>(resolve => { timer = setTimeout(resolve, ms) }), stop])
  } finally {
    clearTimeout(timer)
  }
}
