/**
 * The config schema (TypeBox): validation, the TypeScript types of `defineConfig`,
 * and the JSON Schema for editors (`switchyard schema`). Prism's keys keep their
 * names and meaning (PRODUCT §1.1); Switchyard's own keys extend the shape.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import type { HttpRequest, HttpResponse, HttpCookie } from '@switchyard/protocol'

/** A response one service gave, as hooks see it (Prism's `FetchedHttpResponse`). */
export interface FetchedHttpResponse {
  type: 'http' | 'redis' | 'redis-stream'
  id: string
  service: string
  time: number
  route: string
  path: string
  method: string
  stage: number | undefined
  response: HttpResponse
}

export type HandledResult = { handled: true, response: HttpResponse } | { handled: false, request?: HttpRequest } | undefined | void
export type RouteOnRequest = (request: HttpRequest) => HandledResult | Promise<HandledResult>
export type RouteOnResponse = (response: HttpResponse, request: HttpRequest) => HttpResponse | undefined | void | Promise<HttpResponse | undefined | void>
export type RouteOnError = (responses: FetchedHttpResponse[], request: HttpRequest) => unknown
export type MergeResponses = (responses: FetchedHttpResponse[], request: HttpRequest) => FetchedHttpResponse[] | undefined | void | Promise<FetchedHttpResponse[] | undefined | void>
export type ServiceOnRequest = (request: HttpRequest, fetchedResponses: FetchedHttpResponse[]) => HandledResult | Promise<HandledResult>
export type ServiceOnResponse = (response: HttpResponse, request: HttpRequest, fetchedResponses: FetchedHttpResponse[]) => HttpResponse | undefined | void | Promise<HttpResponse | undefined | void>
export type ServiceOnError = (response: HttpResponse | undefined, request: HttpRequest) => unknown
export type RollbackHook = (request: HttpRequest) => HttpRequest | undefined | void
export type OnRollbackRequest = (request: HttpRequest) => { handled: true } | { handled: false, request?: HttpRequest } | undefined | void | Promise<{ handled: true } | { handled: false, request?: HttpRequest } | undefined | void>
export type UrlSelector = (urls: string | string[]) => Promise<string | string[]>

/** A function-valued key, typed for `defineConfig` and checked as `typeof === "function"`. */
function fn<T> (description: string): TSchema & { static: T } {
  return Type.Function([], Type.Any(), { description, errorMessage: 'expected a function' }) as unknown as TSchema & { static: T }
}

const Strict = { additionalProperties: false } as const

export const MappingRule = Type.Object({
  include: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Whitelist and rename map `{ source: target }` (dot paths allowed); unlisted keys are dropped.' })),
  exclude: Type.Optional(Type.Array(Type.String(), { description: 'Keys to drop (dot paths allowed); wins over include.' }))
}, Strict)

export const Mapping = Type.Object({
  fields: Type.Optional(MappingRule),
  headers: Type.Optional(MappingRule)
}, Strict)

/** Keys shared by every service type (Prism's `HttpRouteConfigBase`). */
const serviceBase = {
  awaitResponse: Type.Optional(Type.Boolean({ description: 'false: call the service and do not wait for or merge its answer.', default: true })),
  merge: Type.Optional(Type.Boolean({ description: 'false: call the service without merging its answer.', default: true })),
  timeout: Type.Optional(Type.Integer({ minimum: 1, description: 'Milliseconds before the service counts as timed out (504).', default: 30000 })),
  mergeField: Type.Optional(Type.String({ minLength: 1, description: 'Nest this service\'s body under this key of the merged body.' })),
  mapping: Type.Optional(Mapping),
  responseMapping: Type.Optional(Mapping),
  contentEncoding: Type.Optional(Type.String()),
  contentType: Type.Optional(Type.String()),
  stage: Type.Optional(Type.Integer({ minimum: 0, description: 'Services with the same stage run concurrently; stages run in ascending order, unstaged services last.' })),
  optional: Type.Optional(Type.Boolean({ description: 'true: a failure of this service gives a partial response instead of an error.', default: false })),
  onRequest: Type.Optional(fn<ServiceOnRequest>('Called before the service is called.')),
  onResponse: Type.Optional(fn<ServiceOnResponse>('Called with the service\'s response.')),
  onError: Type.Optional(fn<ServiceOnError>('Called when the service fails.')),
  onRollbackRequest: Type.Optional(fn<OnRollbackRequest>('Called before a rollback is sent.')),
  authentication: Type.Optional(Type.Unknown()),
  caching: Type.Optional(Type.Unknown()),
  rateLimiting: Type.Optional(Type.Unknown()),
  circuitBreaker: Type.Optional(Type.Unknown())
}

const UrlList = Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], { errorMessage: 'expected a URL or a list of URLs' })

export const HttpService = Type.Object({
  type: Type.Literal('http'),
  url: UrlList,
  getUrl: Type.Optional(fn<UrlSelector>('Chooses among the urls per request.')),
  rollback: Type.Optional(fn<RollbackHook>('Returns the HTTP request (with a full URL as `path`) that undoes this service\'s work.')),
  rollbackRequestContentEncoding: Type.Optional(Type.String()),
  rollbackRequestContentType: Type.Optional(Type.String()),
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, description: 'Retries for idempotent methods on connection errors and 502/503/504.', default: 0 })),
  ...serviceBase
}, Strict)

export const RedisService = Type.Object({
  type: Type.Literal('redis'),
  requestChannel: Type.String({ minLength: 1 }),
  numRequestChannels: Type.Optional(Type.Integer({ minimum: 1 })),
  ...serviceBase
}, Strict)

export const RedisStreamService = Type.Object({
  type: Type.Literal('redis-stream'),
  stream: Type.Optional(Type.String({ minLength: 1, description: 'Stream key; default `<prefix>:stream:<service>`.' })),
  group: Type.Optional(Type.String({ minLength: 1 })),
  maxLen: Type.Optional(Type.Integer({ minimum: 1, default: 10000 })),
  ...serviceBase
}, Strict)

export type HttpServiceConfig = Static<typeof HttpService>
export type RedisServiceConfig = Static<typeof RedisService>
export type RedisStreamServiceConfig = Static<typeof RedisStreamService>
export type ServiceConfig = HttpServiceConfig | RedisServiceConfig | RedisStreamServiceConfig

const policyKeys = {
  authentication: Type.Optional(Type.Unknown()),
  caching: Type.Optional(Type.Unknown()),
  rateLimiting: Type.Optional(Type.Unknown()),
  circuitBreaker: Type.Optional(Type.Unknown()),
  allowList: Type.Optional(Type.Unknown()),
  cors: Type.Optional(Type.Unknown())
}

export const RouteConfig = Type.Object({
  services: Type.Record(Type.String(), Type.Unknown(), { description: 'The services this route calls, by name.' }),
  useStream: Type.Optional(Type.Boolean({ description: 'Prism: stream the single service. Switchyard streams single-service routes without transforms by itself.' })),
  onRequest: Type.Optional(fn<RouteOnRequest>('Called first; may answer the request itself or change it.')),
  onResponse: Type.Optional(fn<RouteOnResponse>('Called with the merged response.')),
  onError: Type.Optional(fn<RouteOnError>('Called when the request fails.')),
  mergeResponses: Type.Optional(fn<MergeResponses>('May replace the list of responses before the merge.')),
  genericErrors: Type.Optional(Type.Boolean({ description: 'Send 5xx answers as a generic 500.' })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, description: 'Default `timeout` (milliseconds) for this route\'s services that set none.', default: 30000 })),
  bodyLimitBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'Largest request body for this route (413 above).' })),
  ...policyKeys
}, Strict)

export type RouteConfigT = Omit<Static<typeof RouteConfig>, 'services'> & { services: Record<string, ServiceConfig> }

export const Methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'ALL'] as const
export type Method = typeof Methods[number]

export const HttpProxy = Type.Object({
  routes: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown())),
  redis: Type.Optional(Type.Object({
    responseChannel: Type.Optional(Type.String({ minLength: 1 })),
    cleanupInterval: Type.Optional(Type.Integer({ minimum: 1, description: 'Prism only; Switchyard times each request on its own.' }))
  }, Strict)),
  onRequest: Type.Optional(fn<RouteOnRequest>('Global onRequest, replaced by a route\'s own.')),
  onResponse: Type.Optional(fn<RouteOnResponse>('Global onResponse, replaced by a route\'s own.')),
  onError: Type.Optional(fn<RouteOnError>('Global onError, replaced by a route\'s own.')),
  genericErrors: Type.Optional(Type.Boolean()),
  plugins: Type.Optional(Type.Unknown()),
  serviceTracking: Type.Optional(Type.Unknown()),
  ...policyKeys
}, Strict)

export const ServerOptions = Type.Object({
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: 8080 })),
  host: Type.Optional(Type.String({ default: '0.0.0.0' })),
  bodyLimitBytes: Type.Optional(Type.Integer({ minimum: 0, default: 1048576, description: 'Largest request body (413 above).' })),
  maxHeaderBytes: Type.Optional(Type.Integer({ minimum: 1024, default: 16384, description: 'Largest request head (431 above).' })),
  requestTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, default: 60000, description: 'Time a client has to send a whole request (408).' })),
  headersTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, default: 20000, description: 'Time a client has to send the request head.' })),
  keepAliveTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, default: 72000 })),
  shutdownTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, default: 10000, description: 'How long SIGTERM waits for in-flight requests.' })),
  trustProxy: Type.Optional(Type.Union([Type.Boolean(), Type.String(), Type.Array(Type.String()), Type.Integer({ minimum: 0 })], {
    errorMessage: 'expected true/false, an address or CIDR, a list of them, or a hop count',
    description: 'Peers whose X-Forwarded-* headers are believed (proxy-addr syntax).'
  }))
}, Strict)

export const RedisOptions = Type.Object({
  url: Type.Optional(Type.String({ description: 'redis:// or rediss:// URL; default REDIS_URL.' })),
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  password: Type.Optional(Type.String()),
  db: Type.Optional(Type.Integer({ minimum: 0 })),
  prefix: Type.Optional(Type.String({ minLength: 1, default: 'switchyard', description: 'Prefix of every key Switchyard owns.' })),
  options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Passed to ioredis as given (Prism compatible).' }))
}, Strict)

export const Config = Type.Object({
  version: Type.Optional(Type.Literal(1)),
  instanceId: Type.Optional(Type.String({ minLength: 1 })),
  hostNames: Type.Optional(Type.Array(Type.String())),
  silent: Type.Optional(Type.Boolean()),
  workers: Type.Optional(Type.Integer({ minimum: 1 })),
  server: Type.Optional(ServerOptions),
  logging: Type.Optional(Type.Object({
    level: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info', errorMessage: 'expected one of fatal, error, warn, info, debug, trace, silent' })),
    destination: Type.Optional(Type.String({ description: 'File path for logs; default stdout.' }))
  }, Strict)),
  http: Type.Optional(HttpProxy),
  redis: Type.Optional(RedisOptions),
  state: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('redis')], { errorMessage: 'expected "memory" or "redis"' })),
  useHttps: Type.Optional(Type.Object({
    key: Type.Union([Type.String(), Type.Any()]),
    cert: Type.Union([Type.String(), Type.Any()]),
    ca: Type.Optional(Type.Any())
  }, Strict)),
  cors: Type.Optional(Type.Unknown()),
  clientTracking: Type.Optional(Type.Unknown()),
  webSocket: Type.Optional(Type.Unknown()),
  websocket: Type.Optional(Type.Unknown()),
  webJobs: Type.Optional(Type.Unknown()),
  webjobs: Type.Optional(Type.Unknown()),
  createHttpServer: Type.Optional(Type.Unknown()),
  createHttpsServer: Type.Optional(Type.Unknown())
}, Strict)

type RawConfig = Static<typeof Config>

/** The config as `defineConfig` types it: the schema with routes and services typed. */
export type GatewayConfig = Omit<RawConfig, 'http'> & {
  http?: Omit<NonNullable<RawConfig['http']>, 'routes'> & {
    routes: Record<string, Partial<Record<Method, RouteConfigT>>>
  }
}

export type { HttpRequest, HttpResponse, HttpCookie }
