/**
 * The transport contract. A transport is the terminal handler of one service:
 * it MUST resolve with the service's response (any status) or throw a
 * GatewayError (502/503/504) — never a raw error, never hang past `timeoutMs`.
 */
import type { HttpRequest } from '@switchyard/protocol'
import type { GatewayRequest } from '../pipeline/types.js'
import type { ServiceResponse } from '../pipeline/merge.js'
import type { FetchedHttpResponse, ServiceConfig } from '../config/schema.js'

export interface ServiceCall {
  readonly greq: GatewayRequest
  /** The request as this service sees it (after mapping and hooks); undefined when nothing needed one. */
  readonly view: HttpRequest | undefined
  /** The route-level view before any service changed it: identity tells what a hook replaced. */
  readonly baseView: HttpRequest | undefined
  /** Parse the response body (a merge, a hook or a transform needs it). */
  readonly parse: boolean
  /** Milliseconds this call may take. */
  readonly timeoutMs: number
  /** Per-request scratch shared by the services of one stage (e.g. one PUBLISH per channel). */
  readonly stageState: Map<string, unknown>
}

export interface ServiceTransport {
  readonly name: string
  readonly config: ServiceConfig
  /** The request a service's `onRequest` hook sees (for http: `path` is the full target URL, as in Prism). */
  hookView: (view: HttpRequest, greq: GatewayRequest) => HttpRequest | Promise<HttpRequest>
  invoke: (call: ServiceCall) => Promise<ServiceResponse>
  /**
   * Undo this service's work; errors are logged by the caller. `sent` is shared by the
   * rollbacks of one request, so one Redis channel or stream gets one rollback message.
   */
  rollback?: (greq: GatewayRequest, view: HttpRequest, sent: Set<string>) => Promise<void>
  close?: () => Promise<void>
}

export type { FetchedHttpResponse }
