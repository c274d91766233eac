/**
 * Where a token is read from: the `Authorization: Bearer` header (RFC 6750
 * §2.1), another header, a cookie, or a body field. Each reader returns
 * undefined when it finds nothing, so "missing" is decided in one place.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** RFC 6750 §2.1 `b64token`, the characters a bearer token may use. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

function one (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

const BEARER = /^\s*bearer\s+(\S+)\s*$/i

/**
 * The credentials of `Bearer <token>` (the scheme is case-insensitive, RFC 9110
 * §11.1). A regular expression, not a scan: a scan with `charCodeAt` measured
 * ~30k instructions a request under callgrind (V8 left it calling `LoadIC` per
 * character), against ~2k for the expression (docs/performance.md).
 */
export function bearerToken (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const m = BEARER.exec(value)
  return m === null ? undefined : m[1]
}

/** From `Authorization`: only the Bearer scheme counts; Basic credentials are no token. */
export function fromAuthorization (headers: IncomingHttpHeaders): string | undefined {
  return bearerToken(headers.authorization)
}

/** From a named header: the raw value, or the token of a `Bearer ` value (Prism). */
export function fromHeader (headers: IncomingHttpHeaders, name: string): string | undefined {
  const raw = one(headers[name])?.trim()
  if (raw === undefined || raw === '') return undefined
  return /^bearer\s/i.test(raw) ? bearerToken(raw) : raw
}

/** The value of cookie `name` in the `Cookie` header (RFC 6265 §5.4), unquoted and percent-decoded. */
export function fromCookie (headers: IncomingHttpHeaders, name: string): string | undefined {
  const header = headers.cookie
  if (header === undefined) return undefined
  for (const part of (Array.isArray(header) ? header.join('; ') : header).split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    try { value = decodeURIComponent(value) } catch {}
    return value === '' ? undefined : value
  }
  return undefined
}

/** From a parsed body: a string field of a JSON or form object. */
export function fromBody (body: unknown, field: string): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  const v = (body as Record<string, unknown>)[field]
  const s = Array.isArray(v) ? v[0] : v
  return typeof s === 'string' && s !== '' ? s.trim() : undefined
}

/** A quick shape check before jose parses it: three base64url parts (the third empty for `alg: none`). */
export function looksLikeJwt (token: string): boolean {
  return token.length <= 16_384 && B64TOKEN.test(token) && token.split('.').length === 3
}
