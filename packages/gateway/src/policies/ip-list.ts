/**
 * IP allow and deny lists (PRODUCT §4.5), Prism's `allowList` at `http` level
 * or per route (the route's replaces the global one; `"none"` turns it off).
 * Entries are addresses or CIDR blocks, IPv4 or IPv6, matched with node's
 * `net.BlockList` (IPv4-mapped IPv6 addresses match IPv4 entries and back).
 *
 * The address checked is `greq.remoteAddress`: the socket peer, or the
 * X-Forwarded-For client only when the peer is a trusted proxy
 * (`server.trustProxy`), so a spoofed header cannot pass the list.
 * An address in `disallowed` is refused even when `allowed` lists it (deny
 * wins); with an `allowed` list, any other address is refused.
 * Refused → 403 GW_ERR_IP_FORBIDDEN.
 */
import { BlockList, isIP } from 'node:net'
import { GatewayError } from '@switchyard/protocol'
import type { GatewayConfig } from '../config/types.js'
import { configInvalid, formatPath } from '../config/validate.js'
import type { GatewayRequest, GatewayResponse } from '../pipeline/types.js'
import { transparent, type DirectHandler, type Handler, type Policy, type PolicyDeps, type RouteTarget } from './types.js'

/**
 * Prism's `allowList`.
 * @example
 * allowList: { allowed: ['10.0.0.0/8', '2001:db8::/32'], disallowed: ['10.6.6.6'] }
 */
export interface AllowListOptions {
  /** Only these addresses or CIDR blocks may call. @default every address */
  allowed?: string[]
  /** These addresses or CIDR blocks may not call, even if `allowed` lists them. @default none */
  disallowed?: string[]
}

/** Config keys this module implements; start refuses a key no module implements. */
export const keys: readonly string[] = ['allowList']

interface Issue { path: readonly string[], message: string }

function configError (issues: readonly Issue[]): GatewayError {
  return configInvalid(issues.map(i => ({ path: formatPath(i.path), message: i.message })))
}

/** An address as BlockList wants it: no brackets, no IPv6 zone; undefined when it is not an IP. */
function plainAddress (raw: string): { address: string, family: 'ipv4' | 'ipv6' } | undefined {
  let a = raw.trim()
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1)
  const zone = a.indexOf('%')
  if (zone !== -1) a = a.slice(0, zone)
  const v = isIP(a)
  return v === 4 ? { address: a, family: 'ipv4' } : v === 6 ? { address: a, family: 'ipv6' } : undefined
}

/** A BlockList of `entries`, or the problems with them. */
function compileList (entries: unknown, path: readonly string[], issues: Issue[]): BlockList | undefined {
  if (entries === undefined) return undefined
  if (!Array.isArray(entries)) { issues.push({ path, message: 'expected a list of IP addresses or CIDR blocks' }); return undefined }
  if (entries.length === 0) {
    issues.push({ path, message: path.at(-1) === 'allowed' ? 'an empty `allowed` list would refuse every client; remove it, or list addresses' : 'expected at least one address; remove the key otherwise' })
    return undefined
  }
  const list = new BlockList()
  entries.forEach((entry: unknown, i) => {
    const p = [...path, String(i)]
    if (typeof entry !== 'string') { issues.push({ path: p, message: 'expected an IP address or CIDR block as a string' }); return }
    const slash = entry.indexOf('/')
    const ip = plainAddress(slash === -1 ? entry : entry.slice(0, slash))
    if (ip === undefined) { issues.push({ path: p, message: 'expected an IPv4 or IPv6 address, or a CIDR block such as 10.0.0.0/8 or 2001:db8::/32' }); return }
    if (slash === -1) { list.addAddress(ip.address, ip.family); return }
    const bitsText = entry.slice(slash + 1).trim()
    const bits = Number(bitsText)
    const max = ip.family === 'ipv4' ? 32 : 128
    if (!/^\d{1,3}$/.test(bitsText) || bits > max) { issues.push({ path: p, message: `expected a prefix length from 0 to ${max} after "/"` }); return }
    list.addSubnet(ip.address, bits, ip.family)
  })
  return list
}

interface CompiledList { allow: BlockList | undefined, deny: BlockList | undefined }

function compile (raw: unknown, path: readonly string[]): CompiledList {
  const issues: Issue[] = []
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw configError([{ path, message: 'expected { allowed?: [...], disallowed?: [...] } or "none"' }])
  const o = raw as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'allowed' && k !== 'disallowed' && o[k] !== undefined) issues.push({ path: [...path, k], message: 'unknown key; expected `allowed` or `disallowed`' })
  const allow = compileList(o.allowed, [...path, 'allowed'], issues)
  const deny = compileList(o.disallowed, [...path, 'disallowed'], issues)
  if (issues.length > 0) throw configError(issues)
  if (allow === undefined && deny === undefined) throw configError([{ path, message: 'give `allowed`, `disallowed` or both' }])
  return { allow, deny }
}

/** Whether `remoteAddress` may call: deny wins; with an allow list, only listed addresses pass; a non-IP never passes. */
export function addressPermitted (list: CompiledList, remoteAddress: string): boolean {
  const ip = plainAddress(remoteAddress)
  if (ip === undefined) return false
  if (list.deny?.check(ip.address, ip.family) === true) return false
  return list.allow === undefined || list.allow.check(ip.address, ip.family)
}

function chooseAllowList (target: RouteTarget, config: GatewayConfig): { value: unknown, path: readonly string[] } | undefined {
  const own = (target.route as { allowList?: unknown }).allowList
  if (own !== undefined) return { value: own, path: ['http', 'routes', target.path, target.method, 'allowList'] }
  const global = (config.http as { allowList?: unknown } | undefined)?.allowList
  if (global !== undefined) return { value: global, path: ['http', 'allowList'] }
  return undefined
}

const compiledByGateway = new WeakMap<PolicyDeps, Map<unknown, CompiledList>>()

/**
 * The IP list policy for a route, or undefined when no list applies.
 * Throws GW_ERR_CONFIG_INVALID at start for a malformed entry.
 */
export function ipList (target: RouteTarget, deps: PolicyDeps): Policy | undefined {
  const chosen = chooseAllowList(target, deps.config)
  if (chosen === undefined || chosen.value === 'none') return undefined
  let cache = compiledByGateway.get(deps)
  if (cache === undefined) compiledByGateway.set(deps, cache = new Map())
  let list = cache.get(chosen.value)
  if (list === undefined) cache.set(chosen.value, list = compile(chosen.value, chosen.path))
  const compiled = list
  return transparent(function ipListPolicy (next: Handler): Handler {
    return async function checkClientAddress (greq: GatewayRequest): Promise<GatewayResponse> {
      if (!addressPermitted(compiled, greq.remoteAddress)) throw new GatewayError('GW_ERR_IP_FORBIDDEN')
      return await next(greq)
    }
  }, function ipListDirect (next: DirectHandler): DirectHandler {
    return function checkClientAddressDirect (greq, done, fail) {
      let permitted: boolean
      try {
        permitted = addressPermitted(compiled, greq.remoteAddress)
      } catch (err) {
        fail(err, greq)
        return
      }
      if (permitted) next(greq, done, fail)
      else fail(new GatewayError('GW_ERR_IP_FORBIDDEN'), greq)
    }
  })
}
