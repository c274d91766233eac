/**
 * Merging service responses into one (PRODUCT §3.5): object bodies in config
 * order, `mergeField` nesting, headers merged with `set-cookie` appended,
 * cookies concatenated, the first status kept (two different 2xx → 200).
 * Where Prism answered 500 with a message, a body that cannot be merged is a
 * GW_ERR_MERGE_NOT_OBJECT naming the service.
 */
import { GatewayError, type HttpCookie } from '@switchyard/protocol'
import { isPlainObject } from './body.js'
import { REPRESENTATION_HEADERS, type HeaderMap } from './headers.js'
import { assignOwn, copyOwn } from './objects.js'

/** A service's response inside the gateway. `body` is parsed, or raw bytes when `raw`. */
export interface ServiceResponse {
  status: number
  headers: HeaderMap
  body: unknown
  /** `body` is the service's bytes, untouched (passthrough). */
  raw: boolean
  cookies?: HttpCookie[] | undefined
  redirect?: string | undefined
  contentType?: string | undefined
}

export interface MergeInput {
  service: string
  mergeField: string | undefined
  response: ServiceResponse
}

export function mergeResponses (inputs: readonly MergeInput[]): ServiceResponse {
  if (inputs.length === 1 && inputs[0]!.mergeField === undefined) return inputs[0]!.response
  let status: number | undefined
  let body: unknown
  let bodyFrom: string | undefined
  let redirect: string | undefined
  let contentType: string | undefined
  const headers: HeaderMap = {}
  const cookies: HttpCookie[] = []
  for (const { service, mergeField, response: r } of inputs) {
    if (r.redirect !== undefined) redirect ??= r.redirect
    if (r.body !== undefined) {
      if (mergeField !== undefined) {
        if (body === undefined) body = {}
        else if (!isPlainObject(body)) throw new GatewayError('GW_ERR_MERGE_NOT_OBJECT', { service: bodyFrom })
        ;(body as Record<string, unknown>)[mergeField] = r.body
      } else if (isPlainObject(r.body)) {
        if (body === undefined) body = copyOwn(r.body)
        else if (isPlainObject(body)) assignOwn(body, r.body)
        else throw new GatewayError('GW_ERR_MERGE_NOT_OBJECT', { service: bodyFrom })
      } else if (body === undefined && inputs.every(i => i.service === service || i.response.body === undefined)) {
        // The only service with a body: its body is the answer, as it came.
        body = r.body
        contentType = r.contentType ?? headerString(r.headers['content-type'])
      } else {
        throw new GatewayError('GW_ERR_MERGE_NOT_OBJECT', { service })
      }
      bodyFrom ??= service
    }
    if (status === undefined) status = r.status
    else if (status !== r.status && status >= 200 && status < 300 && r.status >= 200 && r.status < 300) status = 200
    if (r.cookies !== undefined) cookies.push(...r.cookies)
    for (const name in r.headers) {
      if (REPRESENTATION_HEADERS.has(name)) continue
      const v = r.headers[name]!
      if (name === 'set-cookie') {
        const prev = headers[name]
        headers[name] = [...(prev === undefined ? [] : Array.isArray(prev) ? prev : [prev]), ...(Array.isArray(v) ? v : [v])]
      } else {
        headers[name] = v
      }
    }
  }
  return { status: status ?? 200, headers, body, raw: Buffer.isBuffer(body), cookies: cookies.length > 0 ? cookies : undefined, redirect, contentType }
}

function headerString (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
