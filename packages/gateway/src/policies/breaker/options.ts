/**
 * `circuitBreaker` options (PRODUCT §4.4): Prism's `{ maxErrors, duration,
 * errorStatus?, errorBody? }` and Switchyard's keys, at `http`, route or
 * service level (the most specific wins; `"none"` turns an inherited one off).
 */
import { formatPath, type ConfigIssue } from '../../config/validate.js'
import type { BreakerSettings } from './machine.js'

export interface CircuitBreakerConfig {
  /** Prism: open after this many failures within `duration` milliseconds. */
  maxErrors?: number
  /** Prism: the window of `maxErrors`, in milliseconds (also the default `openMs`). */
  duration?: number
  /** Open after this many failures in a row. */
  consecutiveFailures?: number
  /** Open when this share of calls (0–1] failed within `windowMs`… */
  failureRate?: number
  /** …once at least this many calls were made in it. @default 10 */
  minimumCalls?: number
  /** The failure-rate window, in milliseconds. @default 10000 */
  windowMs?: number
  /** How long it stays open before one probe is let through, in milliseconds. @default 10000 (Prism shape: `duration`) */
  openMs?: number
  /** Calls let through while half-open. Only 1 is supported. @default 1 */
  halfOpenProbes?: 1
  /** Share the state through Redis so every gateway instance opens together. @default true when `state: "redis"`, else false */
  shared?: boolean
  /** Status of a refusal while open (Prism). @default 503 */
  errorStatus?: number
  /** Body of a refusal while open (Prism); a string is sent as text, anything else as JSON. @default the GW_ERR_CIRCUIT_OPEN error body */
  errorBody?: unknown
}

/** The `circuitBreaker` key: a breaker, or `"none"` to turn off an inherited one. */
export type CircuitBreakingConfig = CircuitBreakerConfig | 'none' | false

/** The breaker of one service, validated, with defaults applied. */
export interface BreakerSpec {
  /** Where it was configured, e.g. `http.circuitBreaker`. */
  readonly path: string
  readonly settings: BreakerSettings
  readonly shared: boolean | undefined
  readonly errorStatus: number | undefined
  readonly errorBody: unknown
}

/** Defaults when no trigger (consecutiveFailures, failureRate, maxErrors) is given. */
export const DEFAULT_CONSECUTIVE_FAILURES = 5
export const DEFAULT_FAILURE_RATE = 0.5
export const DEFAULT_MINIMUM_CALLS = 10
export const DEFAULT_WINDOW_MS = 10_000
export const DEFAULT_OPEN_MS = 10_000

const KNOWN = new Set(['maxErrors', 'duration', 'consecutiveFailures', 'failureRate', 'minimumCalls', 'windowMs', 'openMs', 'halfOpenProbes', 'shared', 'errorStatus', 'errorBody'])

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function positiveInt (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1
}

export function isOff (v: unknown): boolean {
  return v === 'none' || v === false
}

/** Validates a `circuitBreaker` value found at `segs`; undefined when off or invalid (issues pushed). */
export function parseCircuitBreaker (v: unknown, segs: readonly string[], issues: ConfigIssue[]): BreakerSpec | undefined {
  const at = (k?: string): string => formatPath(k === undefined ? segs : [...segs, k])
  if (v === undefined || isOff(v)) return undefined
  if (!isObject(v)) {
    issues.push({ path: at(), message: 'expected a breaker object ({ consecutiveFailures, openMs, … }) or "none"' })
    return undefined
  }
  const before = issues.length
  for (const k of Object.keys(v)) if (!KNOWN.has(k)) issues.push({ path: at(k), message: 'unknown key' })
  for (const k of ['maxErrors', 'duration', 'consecutiveFailures', 'minimumCalls', 'windowMs', 'openMs'] as const) {
    if (v[k] !== undefined && !positiveInt(v[k])) issues.push({ path: at(k), message: k === 'maxErrors' || k === 'consecutiveFailures' || k === 'minimumCalls' ? 'expected an integer >= 1' : 'expected an integer number of milliseconds >= 1' })
  }
  if (v.maxErrors !== undefined && v.duration === undefined) issues.push({ path: at('duration'), message: 'required with `maxErrors` (the window, in milliseconds)' })
  if (v.duration !== undefined && v.maxErrors === undefined) issues.push({ path: at('maxErrors'), message: 'required with `duration` (failures within it that open the breaker)' })
  if (v.failureRate !== undefined && !(typeof v.failureRate === 'number' && v.failureRate > 0 && v.failureRate <= 1)) issues.push({ path: at('failureRate'), message: 'expected a number greater than 0 and at most 1' })
  for (const k of ['minimumCalls', 'windowMs'] as const) {
    if (v[k] !== undefined && v.failureRate === undefined) issues.push({ path: at(k), message: 'only used with `failureRate`' })
  }
  if (v.halfOpenProbes !== undefined && v.halfOpenProbes !== 1) issues.push({ path: at('halfOpenProbes'), message: 'only 1 is supported (one probe while half-open)' })
  if (v.shared !== undefined && typeof v.shared !== 'boolean') issues.push({ path: at('shared'), message: 'expected true or false' })
  if (v.errorStatus !== undefined && !(typeof v.errorStatus === 'number' && Number.isInteger(v.errorStatus) && v.errorStatus >= 400 && v.errorStatus <= 599)) {
    issues.push({ path: at('errorStatus'), message: 'expected an HTTP status from 400 to 599' })
  }
  if (issues.length > before) return undefined
  const noTrigger = v.maxErrors === undefined && v.consecutiveFailures === undefined && v.failureRate === undefined
  const failureRate = v.failureRate as number | undefined ?? (noTrigger ? DEFAULT_FAILURE_RATE : undefined)
  return {
    path: at(),
    settings: {
      consecutiveFailures: v.consecutiveFailures as number | undefined ?? (noTrigger ? DEFAULT_CONSECUTIVE_FAILURES : undefined),
      failureRate,
      minimumCalls: v.minimumCalls as number | undefined ?? DEFAULT_MINIMUM_CALLS,
      windowMs: v.windowMs as number | undefined ?? DEFAULT_WINDOW_MS,
      maxErrors: v.maxErrors as number | undefined,
      maxErrorsWindowMs: v.duration as number | undefined ?? 0,
      openMs: v.openMs as number | undefined ?? v.duration as number | undefined ?? DEFAULT_OPEN_MS
    },
    shared: v.shared as boolean | undefined,
    errorStatus: v.errorStatus as number | undefined,
    errorBody: v.errorBody
  }
}
