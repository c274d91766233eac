/**
 * createGateway(config) → { listen, close, inject, address }: validates the
 * config, compiles every route once, and serves them (STYLE §2).
 */
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { GatewayError } from '@switchyard/protocol'
import type { GatewayConfig, RouteConfigT, ServiceConfig } from './config/types.js'
import { validateConfig, unsupportedUses } from './config/validate.js'
import { createLogger } from './log.js'
import { Metrics } from './metrics.js'
import { CompiledRoute, DEFAULT_TIMEOUT_MS, type CompiledService } from './pipeline/route.js'
import { createFront, directHandler, directTerminal, type DirectTarget, type Endpoint, type Front, type PathEntry } from './server/front.js'
import { compileTrust } from './server/trust.js'
import { PoolRegistry } from './transports/http.js'
import { HttpServiceTransport } from './transports/http-service.js'
import type { ServiceTransport } from './transports/types.js'
import { randomUUID } from 'node:crypto'
import { DEFAULT_PREFIX, defaultResponseChannel, responseChannelFor } from '@switchyard/protocol'
import { RedisConnections, redisSettings } from './redis/connections.js'
import { Liveness, type ServiceLiveness } from './redis/liveness.js'
import { ReplyRouter } from './redis/replies.js'
import type { RedisContext } from './transports/redis-common.js'
import { RedisPubSubTransport } from './transports/redis-pubsub.js'
import { RedisStreamsTransport } from './transports/redis-streams.js'
import { circuitBreaker, compose, composeDirect, routePolicies, SUPPORTED_POLICY_KEYS, type Handler, type PolicyDeps } from './policies/index.js'
import { ensureBuffered } from './pipeline/body.js'
import { corsPreflight } from './policies/cors.js'
import { streamService } from './pipeline/stream.js'

export interface Gateway {
  /** Starts listening; resolves with the address, e.g. `http://127.0.0.1:8080`. */
  listen: (port?: number, host?: string) => Promise<string>
  /** Stops accepting, lets in-flight requests finish, closes pools. Idempotent. */
  close: () => Promise<void>
  /** In-process requests without a socket (light-my-request, through the same dispatch as a socket), for tests. */
  inject: Front['inject']
  /** The listening address, once `listen` resolved. */
  readonly address: string | undefined
  readonly log: Logger
  readonly metrics: Metrics
  /** The compiled route table: path, method, services, and whether it streams. */
  routes: () => RouteSummary[]
  /** This instance's id: its Redis replies arrive on `<responseChannel>.<instanceId>`. */
  readonly instanceId: string
  /** Live replicas of each Redis service (PROTOCOL §3); `unknown` for services that never announce. */
  liveReplicas: () => Record<string, ServiceLiveness>
  /** Whether the Redis connections are up (always true when the config uses no Redis). */
  redisReady: () => boolean
  /**
   * Programmatic APIs the policies provide (the admin API calls the same):
   * e.g. `gateway.api('cache')` once caching is configured. Undefined when the policy is not in use.
   */
  api: <T = unknown>(name: string) => T | undefined
}

/**
 * One route of the table (`switchyard routes`). `mode`: `passthrough` streams
 * with undici writing the answer straight to the client (every policy of the
 * route is transparent); `stream` streams through a policy that sees the
 * answer (cache, CORS); `buffered` reads bodies in full.
 */
export interface RouteSummary { path: string, method: string, services: Array<{ name: string, type: string, stage: number | undefined }>, mode: 'passthrough' | 'stream' | 'buffered' }

export interface CreateGatewayOptions {
  /** A logger to use instead of creating one from `config.logging`. */
  logger?: Logger
}

/** Service types this version can call. */
export const SUPPORTED_SERVICE_TYPES: ReadonlySet<string> = new Set(['http', 'redis', 'redis-stream'])

/** Pattern params of a route (`/users/:id/*` → id, *). */
function routeParams (path: string): Set<string> {
  const s = new Set<string>()
  for (const m of path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)) s.add(m[1]!)
  if (path.includes('*')) s.add('*')
  return s
}

export function createGateway (input: GatewayConfig, options: CreateGatewayOptions = {}): Gateway {
  const config = validateConfig(input)
  const unsupported = unsupportedUses(config, SUPPORTED_SERVICE_TYPES, SUPPORTED_POLICY_KEYS)
  if (unsupported.length > 0) {
    throw new GatewayError('GW_ERR_CONFIG_UNSUPPORTED', {
      message: 'The config uses features this version does not support yet:\n' + unsupported.map(u => `  ${u.path}: ${u.feature} is not supported yet`).join('\n'),
      data: { unsupported }
    })
  }
  const log = options.logger ?? createLogger(config)
  const metrics = new Metrics()
  const pools = new PoolRegistry()
  const pending = new Set<Promise<unknown>>()
  const track = (p: Promise<unknown>): void => { pending.add(p); p.finally(() => pending.delete(p)).catch(() => {}) }
  const server = config.server ?? {}
  const defaultLimit = server.bodyLimitBytes ?? 1024 * 1024
  const http = config.http
  const prefix = config.redis?.prefix ?? DEFAULT_PREFIX
  // Prism replaced a configured instanceId with a generated one unless clustered; keep a configured one, else generate.
  const instanceId = config.instanceId ?? `gw-${randomUUID().slice(0, 8)}`
  const redisServices = new Set<string>()
  for (const methods of Object.values(http?.routes ?? {})) {
    for (const route of Object.values(methods ?? {}) as RouteConfigT[]) {
      for (const [name, svc] of Object.entries(route.services)) if (svc.type !== 'http') redisServices.add(name)
    }
  }
  const closers: Array<() => Promise<void> | void> = []
  const provided = new Map<string, unknown>()
  let conns: RedisConnections | undefined
  // Created on first use: an HTTP-only config with memory state never touches Redis (Prism crashed without one).
  const getConns = (): RedisConnections => (conns ??= new RedisConnections(redisSettings(config.redis), log))
  const deps: PolicyDeps = {
    log,
    metrics,
    config,
    instanceId,
    prefix,
    redis: () => config.state === 'redis' || config.redis !== undefined || conns !== undefined ? getConns() : undefined,
    onClose: (fn) => { closers.push(fn) },
    provide: (name, value) => { provided.set(name, value) }
  }
  let redis: RedisContext | undefined
  if (redisServices.size > 0) {
    const conns = getConns()
    const channel = responseChannelFor(http?.redis?.responseChannel ?? defaultResponseChannel(prefix), instanceId)
    redis = { conns, replies: new ReplyRouter(conns, channel, log, metrics), liveness: new Liveness(redisServices, prefix, conns, log), prefix, log }
  }
  const table: PathEntry[] = []
  const streamTransports: RedisStreamsTransport[] = []
  const summaries: RouteSummary[] = []
  for (const [path, methods] of Object.entries(http?.routes ?? {})) {
    const params = routeParams(path)
    const entry: PathEntry = { path, methods: new Map(), allow: '' }
    for (const [method, route] of Object.entries(methods ?? {}) as Array<[string, RouteConfigT]>) {
      const target = { path, method, route }
      const services: CompiledService[] = Object.entries(route.services).map(([name, cfg]) => {
        const transport = registerTransport(makeTransport(name, cfg, params, pools, log, redis))
        const base = transport.invoke.bind(transport)
        const guard = circuitBreaker(target, name, deps)
        return {
          name,
          config: cfg,
          transport,
          invoke: guard?.(base) ?? base,
          guarded: guard !== undefined,
          stage: cfg.stage ?? Number.POSITIVE_INFINITY, // unstaged services run last (Prism)
          merge: cfg.merge !== false,
          awaitResponse: cfg.awaitResponse !== false,
          optional: cfg.optional === true,
          timeoutMs: cfg.timeout ?? route.timeoutMs ?? DEFAULT_TIMEOUT_MS
        }
      })
      const compiled = new CompiledRoute(path, method, route, services, { onRequest: http?.onRequest, onResponse: http?.onResponse, onError: http?.onError },
        route.bodyLimitBytes ?? defaultLimit, route.genericErrors ?? http?.genericErrors ?? false, { log, metrics, track })
      const only = services[0]!
      const streams = !compiled.needsView && !compiled.parse && services.length === 1 && only.config.type === 'http' && only.merge && only.awaitResponse && !only.optional &&
        only.config.getUrl === undefined
      const policies = routePolicies(target, deps)
      // The passthrough fast path when no policy needs to see the answer (policies/types.ts `transparent`).
      const direct: DirectTarget | undefined = streams && policies.every(p => p.transparent === true)
        ? { service: only.transport as HttpServiceTransport, timeoutMs: only.timeoutMs, bodyLimit: compiled.bodyLimit }
        : undefined
      const streamTerminal: Handler = direct !== undefined
        ? directTerminal(direct)
        : async (greq) => await streamService(only.transport as HttpServiceTransport, greq, only.timeoutMs, compiled.bodyLimit)
      // A streaming route does not call the service's invoke: its breaker (the same one) wraps the stream instead.
      const terminal: Handler = streams
        ? (only.guarded ? circuitBreaker(target, only.name, deps)?.(streamTerminal) ?? streamTerminal : streamTerminal)
        : async (greq) => { await ensureBuffered(greq, compiled.bodyLimit); return await compiled.run(greq) }
      const ep: Endpoint = {
        route: compiled,
        handle: compose(policies, terminal),
        probe: policies[0]?.probe,
        preflight: corsPreflight(target, deps),
        // Nothing around the fast path but policies with a callback form: the front door serves it by
        // callbacks, without the handler's promise (a circuit breaker around it has none).
        direct: direct !== undefined && terminal === streamTerminal ? composeDirect(policies, terminal, directHandler(direct)) : undefined
      }
      entry.methods.set(method, ep)
      summaries.push({ path, method, services: services.map(s => ({ name: s.name, type: s.config.type, stage: s.config.stage })), mode: direct !== undefined ? 'passthrough' : streams ? 'stream' : 'buffered' })
    }
    const allow = new Set<string>()
    for (const m of entry.methods.keys()) {
      if (m === 'ALL') for (const x of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) allow.add(x)
      else { allow.add(m); if (m === 'GET') allow.add('HEAD') }
    }
    entry.allow = [...allow].join(', ')
    table.push(entry)
  }

  /** Stream transports get their consumer group created at listen. */
  function registerTransport (t: ServiceTransport): ServiceTransport {
    if (t instanceof RedisStreamsTransport) streamTransports.push(t)
    return t
  }

  const https = config.useHttps === undefined
    ? undefined
    : { key: readMaybeFile(config.useHttps.key), cert: readMaybeFile(config.useHttps.cert), ...(config.useHttps.ca !== undefined ? { ca: config.useHttps.ca } : {}) }
  const front = createFront(table, {
    log,
    metrics,
    trustProxy: server.trustProxy,
    trust: compileTrust(server.trustProxy),
    maxHeaderBytes: server.maxHeaderBytes ?? 16384,
    requestTimeoutMs: server.requestTimeoutMs ?? 60_000,
    headersTimeoutMs: server.headersTimeoutMs ?? 20_000,
    keepAliveTimeoutMs: server.keepAliveTimeoutMs ?? 72_000,
    https
  })
  const app = front.app

  let address: string | undefined
  let closing: Promise<void> | undefined
  const shutdownMs = server.shutdownTimeoutMs ?? 10_000

  return {
    async listen (port = server.port ?? 8080, host = server.host ?? '0.0.0.0') {
      if (redis !== undefined && !await redis.conns.waitReady(3000)) log.warn('redis is not reachable; Redis routes answer 503 until it is')
      if (redis !== undefined) {
        await redis.liveness.refresh()
        await Promise.all(streamTransports.map(async t => await t.ensureGroup().catch((err: unknown) => log.warn({ err, stream: t.stream }, 'could not create the consumer group; the first replica will'))))
      }
      address = await app.listen({ port, host })
      if (host === '0.0.0.0' || host === '::') address = address.replace(/\/\/\[[^\]]+\]|\/\/[^:/[]+/, '//127.0.0.1')
      log.info({ address }, 'listening')
      return address
    },
    async close () {
      closing ??= (async () => {
        let timer: NodeJS.Timeout | undefined
        const deadline = new Promise<void>(resolve => { timer = setTimeout(resolve, shutdownMs); timer.unref() })
        await Promise.race([app.close(), deadline])
        await Promise.race([Promise.allSettled([...pending]), deadline])
        clearTimeout(timer)
        await pools.close()
        for (const fn of closers) await fn()
        if (redis !== undefined) {
          redis.replies.close()
          redis.liveness.close()
        }
        await conns?.close()
        await flushLog(log, shutdownMs)
      })()
      return await closing
    },
    inject: front.inject,
    get address () { return address },
    log,
    metrics,
    routes: () => summaries,
    instanceId,
    liveReplicas: () => redis?.liveness.all() ?? {},
    redisReady: () => redis?.conns.ready ?? true,
    api: <T>(name: string) => provided.get(name) as T | undefined
  }
}

function makeTransport (name: string, cfg: ServiceConfig, params: ReadonlySet<string>, pools: PoolRegistry, log: Logger, redis: RedisContext | undefined): ServiceTransport {
  switch (cfg.type) {
    case 'http': return new HttpServiceTransport(name, cfg, params, pools, log)
    case 'redis': return new RedisPubSubTransport(name, cfg, redis!)
    case 'redis-stream': return new RedisStreamsTransport(name, cfg, redis!)
  }
}

function readMaybeFile (v: unknown): unknown {
  // Prism passed file contents; a path to a PEM file is accepted too.
  return typeof v === 'string' && !v.includes('-----BEGIN') ? readFileSync(v) : v
}

/**
 * Waits until the log lines written so far have reached their destination
 * (LineBuffer.flush), at most `maxMs`: a logger whose flush takes no callback,
 * or a destination that stalls, does not hold close() forever.
 */
async function flushLog (log: Logger, maxMs: number): Promise<void> {
  await new Promise<void>(resolve => {
    const timer = setTimeout(resolve, maxMs)
    timer.unref()
    const done = (): void => { clearTimeout(timer); resolve() }
    try {
      log.flush(done)
    } catch {
      done()
    }
  })
}
