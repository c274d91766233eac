/**
 * Every Redis key, channel and stream name Switchyard builds, as
 * `<prefix>:<kind>:<name>` (STYLE §3, BullMQ `QueueKeys`). Prism-compatible
 * channels (`requestChannel`, `responseChannel`) are configured by the user and
 * used as given. docs/protocol.md lists each name with its type and TTL.
 */

/** The prefix of every key Switchyard builds. @default "switchyard" */
export const DEFAULT_PREFIX = 'switchyard'

/**
 * How often a service replica announces itself (PROTOCOL §3), in milliseconds.
 * Its liveness key expires after three intervals.
 * @default 2000
 */
export const HEARTBEAT_INTERVAL_MS = 2000

/** How many heartbeat intervals a replica key outlives its last refresh. */
export const REPLICA_TTL_INTERVALS = 3

/**
 * The one field of a request-stream entry: its value is the JSON of a
 * `RequestMessage` or `RollbackMessage` (envelope.ts).
 */
export const STREAM_FIELD = 'message'

/**
 * Approximate cap on a dead-letter stream (`XADD … MAXLEN ~ n`), in entries.
 * @default 10000
 */
export const DEAD_LETTER_MAXLEN = 10_000

/** The channel a gateway instance receives pub/sub replies on (PROTOCOL §1.1). */
export function responseChannelFor (responseChannel: string, instanceId: string): string {
  return `${responseChannel}.${instanceId}`
}

/**
 * The base of the reply channels when the config names no `redis.responseChannel`:
 * `<prefix>:responses` (each instance listens on `responseChannelFor(this, instanceId)`).
 */
export function defaultResponseChannel (prefix: string): string {
  return `${prefix}:responses`
}

/**
 * The default request stream of a `redis-stream` service: `<prefix>:stream:<service>`.
 * A service config may name its own stream instead.
 */
export function streamKey (prefix: string, service: string): string {
  return `${prefix}:stream:${service}`
}

/** The dead-letter stream of a request stream: `<stream>:dead`. */
export function deadLetterKey (stream: string): string {
  return `${stream}:dead`
}

/**
 * The idempotency record of a completed request: `<prefix>:done:<service>:<id>`.
 * A string holding the reply JSON (`ReplyMessage`), with a TTL.
 */
export function doneKey (prefix: string, service: string, id: string): string {
  return `${prefix}:done:${service}:${id}`
}

/**
 * A replica's liveness key: `<prefix>:replica:<service>:<replicaId>`. A string
 * holding `ReplicaAnnouncement` JSON, set with `PX` = 3 × heartbeat interval.
 */
export function replicaKey (prefix: string, service: string, replicaId: string): string {
  return `${prefix}:replica:${service}:${replicaId}`
}

/**
 * The SET of every replicaId that ever announced itself for a service:
 * `<prefix>:replicas:<service>`. Members are not removed when a replica closes,
 * so "set non-empty, every replica key expired" means dead, and "set empty"
 * means unknown (a Prism-era service that never announces itself).
 */
export function replicaSetKey (prefix: string, service: string): string {
  return `${prefix}:replicas:${service}`
}

/** The value of a replica key (PROTOCOL §3). */
export interface ReplicaAnnouncement {
  service: string
  replicaId: string
  transport: 'redis' | 'redis-stream'
  pid: number
  host: string
  /** Epoch milliseconds. */
  startedAt: number
  /** The request channel, for `transport: "redis"`. */
  channel?: string
  /** The request stream, for `transport: "redis-stream"`. */
  stream?: string
  /** The consumer group, for `transport: "redis-stream"`. */
  group?: string
}
