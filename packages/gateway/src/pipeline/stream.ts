/**
 * The streaming path (PRODUCT §3.1): a route with one HTTP service and no
 * transform pipes the client's body to the service and the service's body to
 * the client, in constant memory, with back-pressure both ways.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { GatewayError } from '@switchyard/protocol'
import { buildPath, callTarget, IDEMPOTENT, upstreamError } from '../transports/http.js'
import type { HttpServiceTransport } from '../transports/http-service.js'
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js'
import type { GatewayRequest, GatewayResponse } from './types.js'
import { addForwardingHeaders } from '../server/forwarding.js'

/** Counts bytes and fails past the limit (bodies without a Content-Length). */
class ByteLimit extends Transform {
  #seen = 0
  readonly #limit: number
  constructor (limit: number) { super(); this.#limit = limit }
  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#limit) cb(new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: this.#limit } }))
    else cb(null, chunk)
  }
}

export async function streamService (service: HttpServiceTransport, greq: GatewayRequest, timeoutMs: number, bodyLimit: number): Promise<GatewayResponse> {
  const headers = upstreamRequestHeaders(greq.headers, true)
  addForwardingHeaders(headers, greq)
  let body: Readable | undefined
  if (greq.body.kind === 'stream') {
    if (greq.body.length !== undefined) {
      if (greq.body.length > bodyLimit) throw new GatewayError('GW_ERR_BODY_TOO_LARGE', { data: { limitBytes: bodyLimit } })
      body = greq.body.stream // Node enforces the declared length.
    } else {
      const limited = new ByteLimit(bodyLimit)
      greq.body.stream.on('error', (err: Error) => limited.destroy(err))
      body = greq.body.stream.pipe(limited)
    }
  }
  // Only an idempotent request without a body can be replayed.
  const retries = body === undefined && IDEMPOTENT.has(greq.method) ? service.config.retries ?? 0 : 0
  for (let attempt = 0; ; attempt++) {
    const target = service.targets.pick()
    try {
      const res = await callTarget(target.pool, {
        method: greq.method,
        path: buildPath(target, greq.params, greq.rawQuery),
        headers,
        body,
        timeoutMs,
        signal: greq.signal
      }, service.name)
      if (attempt < retries && (res.statusCode === 502 || res.statusCode === 503 || res.statusCode === 504)) {
        service.targets.failed(target)
        await res.body.dump()
        continue
      }
      service.targets.succeeded(target)
      return { status: res.statusCode, headers: downstreamResponseHeaders(res.headers, false), body: res.body }
    } catch (err) {
      const e = upstreamError(err, service.name, false)
      if (e.code === 'GW_ERR_UPSTREAM_UNREACHABLE') service.targets.failed(target)
      if (attempt < retries && e.retryable && !greq.signal.aborted) continue
      throw e
    }
  }
}
