/**
 * Reads a request or rollback message off the wire (PROTOCOL §1.1, §1.4). Anything
 * that is not one is reported with a reason, never thrown: a malformed message
 * must not crash a replica (Prism crashed on them, PRODUCT §9.1).
 */
import type { HttpRequest, RequestMessage, RollbackMessage, ServiceMessage } from '@switchyard/protocol'

export type Parsed = { ok: true, message: ServiceMessage } | { ok: false, reason: string, id?: string }

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Missing containers become empty ones, so a handler can read `request.query.x` safely. */
function normalizeRequest (r: Record<string, unknown>): HttpRequest {
  return {
    ...r,
    path: typeof r.path === 'string' ? r.path : '/',
    method: typeof r.method === 'string' ? r.method : 'GET',
    params: isObject(r.params) ? r.params as Record<string, string> : {},
    query: isObject(r.query) ? r.query as HttpRequest['query'] : {},
    headers: isObject(r.headers) ? r.headers as HttpRequest['headers'] : {}
  } as HttpRequest
}

export function parseMessage (raw: string): Parsed {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  if (!isObject(value)) return { ok: false, reason: 'not a JSON object' }
  const id = typeof value.id === 'string' && value.id.length > 0 ? value.id : undefined
  if (id === undefined) return { ok: false, reason: 'no string `id`' }
  if (!isObject(value.request)) return { ok: false, reason: 'no object `request`', id }
  const request = normalizeRequest(value.request)
  if (value.type === 'rollback') {
    const message: RollbackMessage = { ...value, type: 'rollback', id, request }
    return { ok: true, message }
  }
  if (value.type !== 'request') return { ok: false, reason: `unknown \`type\` ${JSON.stringify(value.type) ?? 'undefined'}`, id }
  if (typeof value.responseChannel !== 'string' || value.responseChannel.length === 0) return { ok: false, reason: 'no string `responseChannel`', id }
  const message: RequestMessage = {
    ...value,
    type: 'request',
    id,
    request,
    responseChannel: value.responseChannel,
    // Extensions are optional: a wrong type is ignored rather than fatal.
    deadline: typeof value.deadline === 'number' && Number.isFinite(value.deadline) ? value.deadline : undefined,
    traceparent: typeof value.traceparent === 'string' ? value.traceparent : undefined,
    auth: isObject(value.auth) ? value.auth : undefined,
    newId: value.newId === true ? true : undefined
  }
  return { ok: true, message }
}
