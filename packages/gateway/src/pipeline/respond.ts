import { errorBody, GatewayError, isGatewayError } from '@switchyard/protocol'
import type { GatewayRequest, GatewayResponse } from './types.js'

/** The client's view of an error: the catalogue code and message, the request id; no stack, no address. */
export function errorResponse (err: unknown, requestId: string, extraHeaders?: Record<string, string>): GatewayResponse {
  const e = isGatewayError(err) ? err : new GatewayError('GW_ERR_INTERNAL', { cause: err })
  const headers: Record<string, string | string[]> = { 'content-type': 'application/json; charset=utf-8', ...extraHeaders }
  if (e.code === 'GW_ERR_BODY_TOO_LARGE') headers.connection = 'close'
  return { status: e.statusCode, headers, body: Buffer.from(JSON.stringify(errorBody(e, requestId))) }
}

/** Adds headers to whatever answer goes out for `greq` (a later policy's own headers of the same name win). */
export function addResponseHeaders (greq: GatewayRequest, headers: Record<string, string>): void {
  if (greq.responseHeaders === undefined) greq.responseHeaders = headers
  else Object.assign(greq.responseHeaders, headers)
}
