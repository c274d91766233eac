/**
 * Validates `serve()` options and applies defaults, without mutating the caller's object.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { DEFAULT_PREFIX, HEARTBEAT_INTERVAL_MS, streamKey } from '@switchyard/protocol'
import { silentLogger } from './logger.js'
import type { Logger, RedisConnectionOptions, RequestHandler, RollbackHandler, ServeOptions } from './types.js'

export interface ResolvedOptions {
  service: string
  handler: RequestHandler
  rollback: RollbackHandler | undefined
  redis: RedisConnectionOptions
  prefix: string
  transport: { kind: 'redis', channel: string } | { kind: 'redis-stream', stream: string, group: string, consumer: string }
  replicaId: string
  concurrency: number
  claimIdleMs: number
  reclaimIntervalMs: number
  maxDeliveries: number
  idempotencyTtlMs: number
  heartbeatIntervalMs: number
  blockMs: number
  closeTimeoutMs: number
  logger: Logger
}

function fail (message: string): never {
  throw new TypeError(`serve(): ${message}`)
}

function positiveInt (options: ServeOptions, name: keyof ServeOptions, fallback: number, min = 1): number {
  const v = options[name]
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`\`${name}\` must be an integer ≥ ${min}, got ${String(v)}`)
  return v
}

function nonEmpty (value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(`\`${name}\` must be a non-empty string`)
  return value
}

/** A replica id that is unique across machines and restarts. */
export function newReplicaId (): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
}

export function resolveOptions (options: ServeOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object')
  const service = nonEmpty(options.service, 'service')
  if (typeof options.handler !== 'function') fail('`handler` must be a function `async (request, ctx) => response`')
  if (options.rollback !== undefined && typeof options.rollback !== 'function') fail('`rollback` must be a function when given')
  const prefix = options.prefix === undefined ? DEFAULT_PREFIX : nonEmpty(options.prefix, 'prefix')
  const replicaId = options.replicaId === undefined ? newReplicaId() : nonEmpty(options.replicaId, 'replicaId')

  const hasChannel = options.channel !== undefined
  const hasStream = options.stream !== undefined && options.stream !== false as unknown
  if (hasChannel === hasStream) fail('give exactly one of `channel` (pub/sub) and `stream` (Redis Streams)')
  let transport: ResolvedOptions['transport']
  if (hasChannel) {
    transport = { kind: 'redis', channel: nonEmpty(options.channel, 'channel') }
  } else {
    const stream = options.stream === true ? streamKey(prefix, service) : nonEmpty(options.stream, 'stream')
    transport = {
      kind: 'redis-stream',
      stream,
      group: options.group === undefined ? service : nonEmpty(options.group, 'group'),
      consumer: options.consumer === undefined ? replicaId : nonEmpty(options.consumer, 'consumer')
    }
  }

  const claimIdleMs = positiveInt(options, 'claimIdleMs', 15_000)
  const logger = options.logger ?? silentLogger
  for (const m of ['info', 'warn', 'error'] as const) {
    if (typeof logger[m] !== 'function') fail(`\`logger.${m}\` must be a function`)
  }
  return {
    service,
    handler: options.handler,
    rollback: options.rollback,
    redis: options.redis ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix,
    transport,
    replicaId,
    concurrency: positiveInt(options, 'concurrency', 16),
    claimIdleMs,
    reclaimIntervalMs: positiveInt(options, 'reclaimIntervalMs', Math.max(1, Math.floor(claimIdleMs / 2))),
    maxDeliveries: positiveInt(options, 'maxDeliveries', 5),
    idempotencyTtlMs: positiveInt(options, 'idempotencyTtlMs', 600_000),
    heartbeatIntervalMs: positiveInt(options, 'heartbeatIntervalMs', HEARTBEAT_INTERVAL_MS),
    blockMs: positiveInt(options, 'blockMs', 1000),
    closeTimeoutMs: positiveInt(options, 'closeTimeoutMs', 10_000, 0),
    logger
  }
}
