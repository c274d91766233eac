/**
 * Validation: every error, each with a readable path
 * (`http.routes["/users"].GET.services.userservice.url: expected a URL`), in one
 * GW_ERR_CONFIG_INVALID. Services are checked against the schema of their own
 * `type`, so a mistake in an http service is not reported as a union mismatch.
 */
import { Value } from '@sinclair/typebox/value'
import type { TSchema } from '@sinclair/typebox'
import { GatewayError } from '@switchyard/protocol'
import { Config, RouteConfig, HttpService, RedisService, RedisStreamService, Methods, type GatewayConfig } from './schema.js'

export interface ConfigIssue { path: string, message: string }

const serviceSchemas: Record<string, TSchema> = { http: HttpService, redis: RedisService, 'redis-stream': RedisStreamService }

/** `/http/routes/~1users/GET` → `http.routes["/users"].GET` */
export function formatPath (segments: readonly string[]): string {
  let out = ''
  for (const s of segments) {
    if (/^[A-Za-z_$][\w$]*$/.test(s)) out += out === '' ? s : `.${s}`
    else if (/^\d+$/.test(s)) out += `[${s}]`
    else out += `[${JSON.stringify(s)}]`
  }
  return out === '' ? '(root)' : out
}

function pointerSegments (pointer: string): string[] {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function schemaIssues (schema: TSchema, value: unknown, base: readonly string[]): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  for (const e of Value.Errors(schema, value)) {
    const segs = [...base, ...pointerSegments(e.path)]
    const path = formatPath(segs)
    // Report the outermost problem once per path: a union failing yields one line, not one per member.
    if (seen.has(path)) continue
    seen.add(path)
    const custom = (e.schema as { errorMessage?: string }).errorMessage
    let message = custom ?? e.message.charAt(0).toLowerCase() + e.message.slice(1)
    if (message === 'unexpected property') message = 'unknown key'
    if (e.value === undefined && custom === undefined) message = 'required'
    issues.push({ path, message })
  }
  return issues
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkUrl (value: unknown, path: readonly string[], issues: ConfigIssue[]): void {
  const list = Array.isArray(value) ? value : [value]
  list.forEach((u, i) => {
    const p = Array.isArray(value) ? [...path, String(i)] : path
    let ok = false
    if (typeof u === 'string') {
      try {
        const url = new URL(u)
        ok = url.protocol === 'http:' || url.protocol === 'https:'
      } catch {}
    }
    if (!ok) issues.push({ path: formatPath(p), message: 'expected a URL' })
  })
}

/** Every problem in `config`, empty when it is valid. */
export function configIssues (config: unknown): ConfigIssue[] {
  if (!isObject(config)) return [{ path: '(root)', message: 'expected an object (the config)' }]
  const issues = schemaIssues(Config, config, [])
  const http = config.http
  if (!isObject(http) || !isObject(http.routes)) return issues
  for (const [routePath, methods] of Object.entries(http.routes)) {
    const rp = ['http', 'routes', routePath]
    if (!routePath.startsWith('/')) issues.push({ path: formatPath(rp), message: 'a route path must start with "/"' })
    if (!isObject(methods)) continue
    for (const [method, route] of Object.entries(methods)) {
      const mp = [...rp, method]
      if (!(Methods as readonly string[]).includes(method)) {
        issues.push({ path: formatPath(mp), message: `unknown method; expected one of ${Methods.join(', ')}` })
        continue
      }
      if (!isObject(route)) { issues.push({ path: formatPath(mp), message: 'expected an object with `services`' }); continue }
      issues.push(...schemaIssues(RouteConfig, route, mp))
      if (!isObject(route.services)) continue
      if (Object.keys(route.services).length === 0) issues.push({ path: formatPath([...mp, 'services']), message: 'a route needs at least one service' })
      for (const [name, svc] of Object.entries(route.services)) {
        const sp = [...mp, 'services', name]
        if (!isObject(svc)) { issues.push({ path: formatPath(sp), message: 'expected an object' }); continue }
        const schema = typeof svc.type === 'string' ? serviceSchemas[svc.type] : undefined
        if (schema === undefined) {
          issues.push({ path: formatPath([...sp, 'type']), message: 'expected "http", "redis" or "redis-stream"' })
          continue
        }
        issues.push(...schemaIssues(schema, svc, sp))
        const urlShapeOk = typeof svc.url === 'string' || (Array.isArray(svc.url) && svc.url.length > 0 && svc.url.every(u => typeof u === 'string'))
        if (svc.type === 'http' && urlShapeOk) checkUrl(svc.url, [...sp, 'url'], issues)
      }
    }
  }
  return issues
}

/** One GW_ERR_CONFIG_INVALID listing every issue with its path: the format of every config error, schema or policy. */
export function configInvalid (issues: readonly ConfigIssue[]): GatewayError {
  return new GatewayError('GW_ERR_CONFIG_INVALID', {
    message: `The config is invalid (${issues.length} ${issues.length === 1 ? 'error' : 'errors'}):\n` + issues.map(i => `  ${i.path}: ${i.message}`).join('\n'),
    data: { issues }
  })
}

/** Throws GW_ERR_CONFIG_INVALID listing every issue; returns the config typed. */
export function validateConfig (config: unknown): GatewayConfig {
  const issues = configIssues(config)
  if (issues.length > 0) throw configInvalid(issues)
  return config as GatewayConfig
}

export interface UnsupportedUse { path: string, feature: string }

const laterPolicyKeys = ['authentication', 'caching', 'rateLimiting', 'circuitBreaker', 'allowList', 'cors'] as const

/**
 * Keys that validate (they are Prism's, or planned) but that this version does
 * not implement yet. Start refuses them: a policy silently ignored is a hole.
 */
export function unsupportedUses (config: GatewayConfig, supportedServiceTypes: ReadonlySet<string>, supportedPolicies: ReadonlySet<string> = new Set()): UnsupportedUse[] {
  const out: UnsupportedUse[] = []
  const top = config as Record<string, unknown>
  for (const k of ['cors', 'webSocket', 'websocket', 'webJobs', 'webjobs', 'createHttpServer', 'createHttpsServer'] as const) {
    if (top[k] !== undefined && !supportedPolicies.has(k)) out.push({ path: k, feature: k })
  }
  const http = config.http as Record<string, unknown> | undefined
  if (http === undefined) return out
  for (const k of [...laterPolicyKeys, 'plugins'] as const) if (http[k] !== undefined && !supportedPolicies.has(k)) out.push({ path: `http.${k}`, feature: k })
  for (const [routePath, methods] of Object.entries(config.http?.routes ?? {})) {
    for (const [method, route] of Object.entries(methods ?? {})) {
      if (route === undefined) continue
      const mp = ['http', 'routes', routePath, method]
      for (const k of laterPolicyKeys) if ((route as Record<string, unknown>)[k] !== undefined && !supportedPolicies.has(k)) out.push({ path: formatPath([...mp, k]), feature: k })
      for (const [name, svc] of Object.entries(route.services)) {
        const sp = [...mp, 'services', name]
        if (!supportedServiceTypes.has(svc.type)) out.push({ path: formatPath([...sp, 'type']), feature: `type: "${svc.type}"` })
        for (const k of ['authentication', 'caching', 'rateLimiting', 'circuitBreaker'] as const) {
          if ((svc as Record<string, unknown>)[k] !== undefined && !supportedPolicies.has(k)) out.push({ path: formatPath([...sp, k]), feature: k })
        }
      }
    }
  }
  return out
}
