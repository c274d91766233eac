export type {
  FetchedHttpResponse, GatewayConfig, RouteConfigT, ServiceConfig, HttpServiceConfig, RedisServiceConfig, RedisStreamServiceConfig,
  RouteOnRequest, RouteOnResponse, RouteOnError, MergeResponses, ServiceOnRequest, ServiceOnResponse, ServiceOnError, RollbackHook, Method
} from './schema.js'
import type { RouteOnRequest, RouteOnResponse, RouteOnError, MergeResponses } from './schema.js'

export interface HttpProxyHooks {
  onRequest?: RouteOnRequest | undefined
  onResponse?: RouteOnResponse | undefined
  onError?: RouteOnError | undefined
  mergeResponses?: MergeResponses | undefined
}
