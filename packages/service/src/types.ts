/**
 * The public types of `serve()`: options, handler signatures, events and the
 * running `Service`.
 */
import type { EventEmitter } from 'node:events'
import type { HttpRequest, HttpResponse, RequestMessage, RollbackMessage } from '@switchyard/protocol'
import type { RedisOptions } from 'ioredis'

/**
 * Where the SDK connects: a URL (`redis://…`, `rediss://…`), an ioredis options
 * object, or `{ url, ...ioredisOptions }`. The SDK opens its own connections
 * from it (one for commands, one for SUBSCRIBE or for the blocking XREADGROUP).
 */
export type RedisConnectionOptions = string | RedisOptions | ({ url: string } & RedisOptions)

/** A pino-compatible logger; every method takes `(object, message)`. */
export interface Logger {
  debug?: (obj: Record<string, unknown>, msg?: string) => void
  info: (obj: Record<string, unknown>, msg?: string) => void
  warn: (obj: Record<string, unknown>, msg?: string) => void
  error: (obj: Record<string, unknown>, msg?: string) => void
}

/** Which protocol a replica speaks: pub/sub (PROTOCOL §1) or streams (PROTOCOL §2). */
export type ServiceTransport = 'redis' | 'redis-stream'

/** What a handler knows about the request besides the HTTP request itself. */
export interface RequestContext {
  /** The request id: the gateway matches the reply on it, and on streams it is the idempotency key. */
  id: string
  /** The service name replies carry (`ServeOptions.service`). */
  service: string
  /** This replica's id. */
  replicaId: string
  transport: ServiceTransport
  /** Epoch milliseconds after which the gateway no longer waits for the reply, when it sent one. */
  deadline: number | undefined
  /** The W3C trace context of the gateway's span, when it sent one. */
  traceparent: string | undefined
  /** The verified JWT claims, when the route authenticates. */
  auth: Record<string, unknown> | undefined
  /**
   * Aborted when the deadline passes (reason: a `DOMException` named `TimeoutError`)
   * or when `close()` gives up waiting (`closeTimeoutMs`). Pass it to fetch, undici, etc.
   */
  signal: AbortSignal
  /** Streams: the entry's id in the stream. */
  entryId: string | undefined
  /** Streams: how many times the entry has been delivered, this delivery included (1 the first time). */
  deliveries: number | undefined
  /** The whole message as it arrived, for fields this SDK does not model. */
  message: RequestMessage | RollbackMessage
}

/**
 * Answers one request. A thrown error becomes a reply `{ status: 500, body: { error: { code:
 * "GW_ERR_SERVICE_HANDLER", message } } }` (a thrown `GatewayError` keeps its own code and status).
 * A `Buffer`/`Uint8Array` body is sent as base64 with `bodyEncoding: "base64"`.
 */
export type RequestHandler = (request: HttpRequest, ctx: RequestContext) => Promise<HttpResponse> | HttpResponse

/** Undoes the work of a request the gateway rolled back (PROTOCOL §1.4). No reply is sent. */
export type RollbackHandler = (request: HttpRequest, ctx: RequestContext) => Promise<void> | void

/** Options of `serve()`. Give exactly one of `channel` and `stream`. */
export interface ServeOptions {
  /** The service's name in the gateway config; every reply carries it as `service`. */
  service: string
  /** Answers requests. */
  handler: RequestHandler
  /** Undoes a request on rollback messages; without it rollbacks are acknowledged and ignored. */
  rollback?: RollbackHandler
  /**
   * Redis to connect to.
   * @default process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
   */
  redis?: RedisConnectionOptions
  /**
   * Prefix of every key the SDK builds (idempotency records, liveness keys, the default stream).
   * MUST match the gateway's `redis.prefix`.
   * @default "switchyard" (DEFAULT_PREFIX)
   */
  prefix?: string
  /** Pub/sub (`type: "redis"`, Prism-compatible): the request channel (the config's `requestChannel`). */
  channel?: string
  /**
   * Streams (`type: "redis-stream"`): `true` for the default stream `<prefix>:stream:<service>`,
   * or the stream name the gateway config gives.
   */
  stream?: true | string
  /**
   * How many handlers may run at once; pub/sub messages beyond it wait in memory,
   * streams read only as many entries as there are free slots.
   * @default 16
   */
  concurrency?: number
  /**
   * Streams: the consumer group.
   * @default the service name
   */
  group?: string
  /**
   * Streams: this replica's consumer name in the group.
   * @default the replicaId
   */
  consumer?: string
  /**
   * This replica's id in liveness keys.
   * @default "<hostname>-<pid>-<8 random hex digits>"
   */
  replicaId?: string
  /**
   * Streams: an entry pending for longer than this (milliseconds) with no sign of
   * life from its consumer is taken over by another replica (XAUTOCLAIM).
   * @default 15000
   */
  claimIdleMs?: number
  /**
   * Streams: how often (milliseconds) to look for entries to reclaim and to renew
   * the claim on entries this replica is still working on.
   * @default claimIdleMs / 2
   */
  reclaimIntervalMs?: number
  /**
   * Streams: an entry delivered more than this many times goes to `<stream>:dead`.
   * @default 5
   */
  maxDeliveries?: number
  /**
   * Streams: how long (milliseconds) the reply of a completed request is kept to answer
   * a redelivery of the same id without running the handler again.
   * @default 600000 (10 minutes)
   */
  idempotencyTtlMs?: number
  /**
   * How often (milliseconds) the replica announces itself; its key expires after 3 intervals.
   * @default 2000 (HEARTBEAT_INTERVAL_MS)
   */
  heartbeatIntervalMs?: number
  /**
   * Streams: how long (milliseconds) one XREADGROUP blocks waiting for entries.
   * @default 1000
   */
  blockMs?: number
  /**
   * How long (milliseconds) `close()` waits for handlers in flight before it aborts
   * their signals and lets go (stream entries stay pending, to be reclaimed).
   * @default 10000
   */
  closeTimeoutMs?: number
  /**
   * Where the SDK logs (pino-compatible).
   * @default a logger that discards everything
   */
  logger?: Logger
}

/** Identifies the request an event is about. */
export interface RequestEventInfo {
  id: string
  /** Streams: the entry id. */
  entryId?: string
  /** Streams: deliveries so far, this one included. */
  deliveries?: number
}

/** Events of a running `Service` (names are past tense, as everywhere in Switchyard). */
export interface ServiceEvents {
  /** A reply was sent. */
  'request.completed': [info: RequestEventInfo & { status: number, durationMs: number }]
  /** The handler threw; the 500 reply has been sent. */
  'request.failed': [info: RequestEventInfo & { error: unknown, durationMs: number }]
  /** The request was past its deadline and was not processed (streams: acknowledged). */
  'request.skipped': [info: RequestEventInfo & { reason: 'deadline' }]
  /** Streams: the id was already completed; its stored reply was published again. */
  'request.replayed': [info: RequestEventInfo]
  'rollback.completed': [info: RequestEventInfo]
  'rollback.failed': [info: RequestEventInfo & { error: unknown }]
  /** A message or entry that is not a valid request or rollback was dropped (streams: dead-lettered). */
  'message.rejected': [info: { reason: string, entryId?: string }]
  /** Streams: entries another consumer left pending were taken over. */
  'entries.reclaimed': [info: { count: number }]
  /** Streams: an entry moved to `<stream>:dead`. */
  'entry.dead-lettered': [info: { entryId: string, id?: string, reason: string, deliveries: number }]
  /** Streams: the consumer group was created (at start, or again after Redis lost it). */
  'group.created': [info: { stream: string, group: string, startId: '$' | '0' }]
  /** close() finished. */
  closed: []
}

/** A running replica, returned by `serve()`. */
export interface Service extends EventEmitter<ServiceEvents> {
  readonly replicaId: string
  readonly service: string
  readonly transport: ServiceTransport
  /** Pub/sub: the request channel. */
  readonly channel: string | undefined
  /** Streams: the request stream, its group and this replica's consumer name. */
  readonly stream: string | undefined
  readonly group: string | undefined
  readonly consumer: string | undefined
  /** Handlers running now. */
  readonly inFlight: number
  /**
   * Stops taking work, waits up to `closeTimeoutMs` for handlers in flight (stream entries
   * that do not finish stay pending and are reclaimed by other replicas), removes the
   * liveness key and closes the connections. Idempotent: every call returns the same promise.
   */
  close: () => Promise<void>
}
