/**
 * The pipeline's two types (STYLE §2): a Handler answers a request; a Policy
 * wraps a handler. Policies are built once per route at start; to
 * short-circuit, a policy returns a response or throws a GatewayError.
 */
import type { Logger } from 'pino'
import type { GatewayConfig, RouteConfigT } from '../config/types.js'
import type { Metrics } from '../metrics.js'
import type { GatewayRequest, GatewayResponse } from '../pipeline/types.js'
import type { RedisConnections } from '../redis/connections.js'

export type Handler = (greq: GatewayRequest) => Promise<GatewayResponse>
export type Policy = ((next: Handler) => Handler) & {
  /**
   * The policy never reads, copies or replaces the answer of the handler it
   * wraps: it refuses before the call, or adds headers through
   * `greq.responseHeaders`. A streaming route whose policies are all
   * transparent keeps the passthrough fast path (the answer is written by
   * undici straight to the client, and the handler returns it as `sent`).
   */
  readonly transparent?: true
  /**
   * Answers a request synchronously, without calling the handler it wraps,
   * or returns undefined to say "run me the normal way". The front door calls
   * it before the composed handler when this policy is the route's outermost
   * one (only then is its answer the route's answer): the cache's fresh
   * in-process hit, without the promise chain of the policies.
   */
  readonly probe?: (greq: GatewayRequest) => GatewayResponse | undefined
}

/** Marks a policy as transparent (see `Policy.transparent`). */
export function transparent (policy: (next: Handler) => Handler): Policy {
  return Object.assign(policy, { transparent: true as const })
}

/** What a policy factory gets at start. */
export interface PolicyDeps {
  readonly log: Logger
  readonly metrics: Metrics
  readonly config: GatewayConfig
  /** This gateway instance's id. */
  readonly instanceId: string
  /** Prefix of every Redis key Switchyard owns. */
  readonly prefix: string
  /** The shared Redis connections, created on first call; undefined when the config chose memory state. */
  readonly redis: () => RedisConnections | undefined
  /** Registers work to finish (or cancel) on close. */
  readonly onClose: (fn: () => Promise<void> | void) => void
  /** Offers a programmatic API on the gateway (`gateway.api(name)`), e.g. cache invalidation. */
  readonly provide: (name: string, value: unknown) => void
}

/** The route a policy is built for. */
export interface RouteTarget {
  readonly path: string
  readonly method: string
  readonly route: RouteConfigT
}

/** Composes policies so the first in the list runs first (outermost). */
export function compose (policies: readonly Policy[], terminal: Handler): Handler {
  let h = terminal
  for (let i = policies.length - 1; i >= 0; i--) h = policies[i]!(h)
  return h
}
