/**
 * The pipeline's two types (STYLE §2): a Handler answers a request; a Policy
 * wraps a handler. Policies are built once per route at start; to
 * short-circuit, a policy returns a response or throws a GatewayError.
 */
import type { Logger } from 'pino'
import type { GatewayConfig, RouteConfigT } from '../config/types.js'
import type { Metrics } from '../metrics.js'
import type { DirectFailed, DirectSent } from '../pipeline/stream.js'
import type { GatewayRequest, GatewayResponse } from '../pipeline/types.js'
import type { RedisConnections } from '../redis/connections.js'

export type Handler = (greq: GatewayRequest) => Promise<GatewayResponse>

/**
 * A handler as callbacks, for the passthrough fast path: it ends by calling
 * `done` with the answer or `fail` with an error, exactly once, and never
 * throws. The front door passes two functions it made at start, so a request
 * makes no promise and no `await` on the way (`Policy.direct`).
 */
export type DirectHandler = (greq: GatewayRequest, done: DirectSent, fail: DirectFailed) => void
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
  /**
   * The same policy as callbacks (a transparent policy's, optionally): handed
   * the rest of the chain twice, as callbacks (`next`) and as a promise handler
   * (`rest`), it serves the usual request through `next` and may hand any other
   * to its own promise form around `rest` (`settle`). A fast-path route whose
   * policies all have one is served this way (`composeDirect`).
   */
  readonly direct?: ((next: DirectHandler, rest: Handler) => DirectHandler) | undefined
}

/** Marks a policy as transparent (see `Policy.transparent`), with its callback form if it has one. */
export function transparent (policy: (next: Handler) => Handler, direct?: (next: DirectHandler, rest: Handler) => DirectHandler): Policy {
  return Object.assign(policy, { transparent: true as const, direct })
}

/** A promise handler's outcome handed to a callback form's `done` or `fail` (the slow paths of `Policy.direct`). */
export function settle (answer: Promise<GatewayResponse>, greq: GatewayRequest, done: DirectSent, fail: DirectFailed): void {
  answer.then((gres) => { done(gres, greq) }, (err: unknown) => { fail(err, greq) })
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

/**
 * The chain `compose` makes, as callbacks around `direct` (the fast path's
 * callback form of `terminal`), when every policy has a callback form;
 * otherwise undefined. Each policy gets the rest of the chain in both forms.
 */
export function composeDirect (policies: readonly Policy[], terminal: Handler, direct: DirectHandler): DirectHandler | undefined {
  if (!policies.every(p => p.direct !== undefined)) return undefined
  let h = terminal
  let d = direct
  for (let i = policies.length - 1; i >= 0; i--) {
    const p = policies[i]!
    d = p.direct!(d, h)
    h = p(h)
  }
  return d
}
