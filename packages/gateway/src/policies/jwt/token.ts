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

/** What `\s` matches in a JavaScript regular expression (ECMA-262 WhiteSpace and LineTerminator). */
function isSpace (c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c > 0x7f && (c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff))
}

/** "bearer" in any case: the character codes, each ORed with 0x20 (lower case). */
const BEARER = [0x62, 0x65, 0x61, 0x72, 0x65, 0x72]

/**
 * The credentials of `Bearer <token>` (the scheme is case-insensitive, RFC 9110
 * §11.1): what `/^\s*bearer\s+(\S+)\s*$/i` captures, read with a scan instead,
 * as it runs for every request of a route with JWT authentication (the regular
 * expression cost ~2k instructions on a ~150-character token under callgrind;
 * docs/performance.md).
 */
export function bearerToken (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const n = value.length
  let i = 0
  while (i < n && isSpace(value.charCodeAt(i))) i++
  if (n - i < 8) return undefined
  for (let k = 0; k < 6; k++) if ((value.charCodeAt(i + k) | 0x20) !== BEARER[k]) return undefined
  i += 6
  if (!isSpace(value.charCodeAt(i))) return undefined
  while (i < n && isSpace(value.charCodeAt(i))) i++
  const start = i
  while (i < n && !isSpace(value.charCodeAt(i))) i++
  if (i === start) return undefined
  const end = i
  while (i < n && isSpace(value.charCodeAt(i))) i++
  return i === n ? value.slice(start, end) : undefined
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
