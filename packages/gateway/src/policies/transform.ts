/**
 * Prism's `mapping` (PRODUCT §3.6): `include` is a whitelist and rename map
 * `{ source: target }`, `exclude` a list of keys to drop that wins over include.
 * Keys may be dot paths (`user.name`). Only object bodies are mapped: a string
 * body is never turned into `{"0": …}` as Prism did.
 */
import { isPlainObject } from '../pipeline/body.js'

export interface MappingRule { include?: Record<string, string>, exclude?: string[] }

function getPath (obj: Record<string, unknown>, path: string): unknown {
  if (!path.includes('.')) return obj[path]
  let cur: unknown = obj
  for (const part of path.split('.')) {
    if (!isPlainObject(cur)) return undefined
    cur = cur[part]
  }
  return cur
}

function setPath (obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let cur = obj
  for (let i = 0; i < parts.length - 1; i++) {
    const next = cur[parts[i]!]
    if (!isPlainObject(next)) cur[parts[i]!] = {}
    cur = cur[parts[i]!] as Record<string, unknown>
  }
  cur[parts[parts.length - 1]!] = value
}

function deletePath (obj: Record<string, unknown>, path: string): void {
  const parts = path.split('.')
  let cur: unknown = obj
  for (let i = 0; i < parts.length - 1; i++) {
    if (!isPlainObject(cur)) return
    cur = cur[parts[i]!]
  }
  if (isPlainObject(cur)) delete cur[parts[parts.length - 1]!]
}

function clone (v: Record<string, unknown>): Record<string, unknown> {
  return structuredClone(v)
}

/** Applies one rule to an object, returning a new object; non-objects come back unchanged. */
export function applyMapping<T> (value: T, rule: MappingRule | undefined): T {
  if (rule === undefined || !isPlainObject(value)) return value
  const src = value as Record<string, unknown>
  let out: Record<string, unknown>
  if (rule.include !== undefined) {
    out = {}
    for (const [from, to] of Object.entries(rule.include)) {
      if (rule.exclude?.includes(from) === true) continue
      const v = getPath(src, from)
      if (v !== undefined) setPath(out, to, isPlainObject(v) ? clone(v) : v)
    }
  } else {
    out = clone(src)
  }
  if (rule.exclude !== undefined) for (const key of rule.exclude) deletePath(out, key)
  return out as T
}
