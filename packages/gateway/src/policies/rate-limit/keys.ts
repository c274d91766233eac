/**
 * Redis key names of the rate limiter, as `<prefix>:<kind>:<name>` (STYLE §3).
 * They live here rather than in protocol/keys.ts because only the gateway
 * builds them; docs/policies/rate-limiting.md lists them.
 */
import { createHash } from 'node:crypto'
import { isIPv6 } from 'node:net'

/** Key values longer than this are hashed, so a huge header cannot make a huge key. */
const MAX_RAW_VALUE = 128

/**
 * The state of one limit for one client:
 * `<prefix>:ratelimit:<bucket>:<algorithm>:<value>`. A string (GCRA) or a
 * sorted set (sliding window), with a TTL of at most the window.
 */
export function rateLimitKey (prefix: string, bucket: string, algorithm: string, value: string): string {
  return `${prefix}:ratelimit:${bucket}:${algorithm}:${value}`
}

/** A key value as stored: kept as given when short, else `#` and its SHA-256 (base64url). */
export function keyValue (kind: string, raw: string): string {
  const v = `${kind}:${raw}`
  return v.length <= MAX_RAW_VALUE ? v : `#${createHash('sha256').update(v).digest('base64url')}`
}

/**
 * The address a per-address limit counts: IPv4 as is (also when IPv4-mapped,
 * `::ffff:1.2.3.4`), IPv6 reduced to its first `ipv6PrefixBits` bits — one
 * client usually holds a whole /64, and could otherwise take a fresh address
 * for every request.
 */
export function addressKey (address: string, ipv6PrefixBits: number): string {
  // IPv4 (no colon) as is, before isIPv6's regex, which cost ~0.4 µs a request.
  if (!address.includes(':')) return address
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  if (!isIPv6(address) || ipv6PrefixBits >= 128) return address
  const groups = expandIPv6(address)
  if (groups === undefined) return address
  const out: string[] = []
  let bits = ipv6PrefixBits
  for (const g of groups) {
    if (bits >= 16) out.push(g.toString(16))
    else if (bits > 0) out.push((g & (0xffff << (16 - bits)) & 0xffff).toString(16))
    else out.push('0')
    bits -= 16
  }
  return `${out.join(':')}/${ipv6PrefixBits}`
}

/** The eight 16-bit groups of an IPv6 address (zone and embedded IPv4 handled). */
function expandIPv6 (address: string): number[] | undefined {
  let a = address
  const zone = a.indexOf('%')
  if (zone !== -1) a = a.slice(0, zone)
  let tail: number[] = []
  const lastColon = a.lastIndexOf(':')
  if (a.slice(lastColon + 1).includes('.')) {
    const v4 = a.slice(lastColon + 1).split('.').map(Number)
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!]
    a = a.slice(0, lastColon + 1) + '0'
  }
  const [head, rest] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined]
  const left = head === '' ? [] : head.split(':')
  const right = rest === undefined || rest === '' ? [] : rest.split(':')
  let groups: string[]
  if (rest === undefined) groups = left
  else groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  const nums = groups.map(g => parseInt(g, 16))
  if (tail.length === 2) nums.splice(6, 2, ...tail)
  return nums.length === 8 && nums.every(n => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? nums : undefined
}
