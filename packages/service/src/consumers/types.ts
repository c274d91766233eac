import type { Redis } from 'ioredis'
import type { ResolvedOptions } from '../options.js'
import type { Emit, Executor } from '../runner.js'

/** What `serve()` hands a consumer. */
export interface ConsumerContext {
  opts: ResolvedOptions
  /** The command connection (PUBLISH, SET, XACK, …), shared with the heartbeat. */
  command: Redis
  executor: Executor
  emit: Emit
}

/** A transport's receiving side, driven by `serve()` through start → stopIntake → finish → close. */
export interface Consumer {
  /** Resolves once the replica receives work (subscribed / group ensured). */
  start: () => Promise<void>
  /** Stops taking new work; work already started keeps running. */
  stopIntake: () => Promise<void>
  /** Called after in-flight work finished (`drained`) or was abandoned at `closeTimeoutMs`. */
  finish: (drained: boolean) => Promise<void>
  /** Closes the consumer's own connections. */
  close: () => Promise<void>
}
