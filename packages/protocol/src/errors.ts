/**
 * The one catalogue of Switchyard errors. `code` is the stable check; the
 * message says what happened, `fix` says what to change. docs/errors.md is
 * generated from this table (see `npm run docs:errors`), so keep both in step.
 */

interface CatalogueEntry {
  readonly statusCode: number
  readonly message: string
  readonly fix: string
  /** Whether repeating the same request may succeed. */
  readonly retryable: boolean
}

function entry (statusCode: number, message: string, fix: string, retryable = false): CatalogueEntry {
  return { statusCode, message, fix, retryable }
}

export const errorCatalogue = {
  // Routing and the client's request
  GW_ERR_ROUTE_NOT_FOUND: entry(404, 'No route matches this path', 'Check the path against `switchyard routes -c <config>`.'),
  GW_ERR_METHOD_NOT_ALLOWED: entry(405, 'The route exists but not for this method', 'Use one of the methods in the `Allow` header, or add the method to the route.'),
  GW_ERR_BODY_TOO_LARGE: entry(413, 'The request body is larger than the limit', 'Send a smaller body, or raise `bodyLimitBytes` on the route or in `server`.'),
  GW_ERR_BODY_MALFORMED: entry(400, 'The request body could not be parsed for its Content-Type', 'Send a body that matches its Content-Type (e.g. valid JSON for application/json).'),
  GW_ERR_REQUEST_TIMEOUT: entry(408, 'The client did not send the request in time', 'Send the whole request within `server.requestTimeoutMs`.'),
  GW_ERR_HEADERS_TOO_LARGE: entry(431, 'The request headers are larger than the limit', 'Send fewer or smaller headers, or raise `server.maxHeaderBytes`.'),
  GW_ERR_BAD_REQUEST: entry(400, 'The request is malformed', 'Fix the request line, headers or URL encoding.'),
  GW_ERR_CLIENT_CLOSED: entry(499, 'The client closed the connection before the response', 'Nothing to fix on the gateway; the client gave up.'),
  // Upstream services
  GW_ERR_UPSTREAM_UNREACHABLE: entry(502, 'The service could not be reached', 'Check that the service is running and that its `url` is right.', true),
  GW_ERR_UPSTREAM_BAD_RESPONSE: entry(502, 'The service sent a response the gateway could not read', 'Fix the service so it answers valid HTTP (or a valid reply message on Redis).', true),
  GW_ERR_UPSTREAM_TIMEOUT: entry(504, 'The service did not answer within its timeout', 'Make the service faster, or raise the service `timeout` (milliseconds).', true),
  GW_ERR_SERVICE_FAILED: entry(502, 'A required service answered with an error', 'See `service` and `status` in the body; fix that service, or mark it `optional: true`.'),
  GW_ERR_SERVICE_UNAVAILABLE: entry(503, 'The service has no live replica listening', 'Start the service (it must subscribe to its request channel or read its stream).', true),
  GW_ERR_SERVICE_HANDLER: entry(500, 'The service handler threw an error', 'See the service logs for the error with this request id.'),
  GW_ERR_MERGE_NOT_OBJECT: entry(502, 'A service body is not a JSON object and cannot be merged with the others', 'Give the service a `mergeField`, set `merge: false`, or return a JSON object.'),
  // Redis
  GW_ERR_REDIS_UNAVAILABLE: entry(503, 'Redis is not reachable', 'Check `redis.url` (or REDIS_URL) and that Redis is running; the gateway reconnects by itself.', true),
  // Policies
  GW_ERR_AUTH_MISSING: entry(401, 'No credentials were sent', 'Send a bearer token in the Authorization header (or where the route expects it).'),
  GW_ERR_AUTH_INVALID: entry(401, 'The credentials were rejected', 'Send a valid, unexpired token signed with an allowed algorithm for this issuer and audience.'),
  GW_ERR_AUTH_JWKS_UNAVAILABLE: entry(503, 'The key set (JWKS) that verifies tokens could not be fetched', 'Check `jwksUrl` and that the identity provider is reachable; the gateway retries on the next request.', true),
  GW_ERR_AUTH_FORBIDDEN: entry(403, 'The credentials are valid but not allowed here', 'Use an identity the route\'s `verify` hook accepts.'),
  GW_ERR_RATE_LIMITED: entry(429, 'Too many requests', 'Wait for the time in `Retry-After` before sending again.', true),
  GW_ERR_CIRCUIT_OPEN: entry(503, 'The service is failing and the circuit breaker is open', 'Wait for `Retry-After`; fix the failing service.', true),
  GW_ERR_IP_FORBIDDEN: entry(403, 'The client address is not allowed on this route', 'Call from an allowed address, or change the route\'s IP allow/deny lists.'),
  GW_ERR_CORS_REJECTED: entry(403, 'The CORS preflight was refused', 'Add the origin, method or header to the route\'s `cors` settings.'),
  // Hooks and the gateway itself
  GW_ERR_HOOK_FAILED: entry(500, 'A hook threw an error', 'Fix the hook named in the log line with this request id.'),
  GW_ERR_INTERNAL: entry(500, 'The gateway failed to handle the request', 'Report it with the log line carrying this request id.'),
  GW_ERR_SHUTTING_DOWN: entry(503, 'The gateway is shutting down', 'Retry against another instance.', true),
  // Configuration and start-up (never sent to clients)
  GW_ERR_CONFIG_LOAD: entry(500, 'The config file could not be loaded', 'Check the path and that the file is valid JS, TS, JSON or YAML.'),
  GW_ERR_CONFIG_INVALID: entry(500, 'The config is invalid', 'Fix each listed path; `switchyard validate -c <config>` lists them all.'),
  GW_ERR_CONFIG_UNSUPPORTED: entry(500, 'The config uses a feature this version does not support yet', 'Remove the key, or upgrade Switchyard to a version that supports it.')
} as const satisfies Record<string, CatalogueEntry>

export type ErrorCode = keyof typeof errorCatalogue

const kGatewayError = Symbol.for('switchyard.error')

export interface GatewayErrorOptions {
  /** Overrides the catalogue message; must not include tokens or payloads. */
  message?: string
  /** Overrides the catalogue status (e.g. a failed service's own status). */
  statusCode?: number
  /** The service this error concerns, when there is one. Safe to show clients. */
  service?: string
  /** Extra fields for the client body; must be safe to show. */
  data?: Record<string, unknown>
  cause?: unknown
}

/**
 * The gateway's error. `switch (err.code)` narrows; `isGatewayError` works across
 * duplicate installs of the package (the class is branded with `Symbol.for`).
 */
export class GatewayError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C
  readonly statusCode: number
  readonly fix: string
  readonly retryable: boolean
  readonly service: string | undefined
  readonly data: Record<string, unknown> | undefined
  readonly [kGatewayError] = true

  constructor (code: C, options: GatewayErrorOptions = {}) {
    const e: CatalogueEntry = errorCatalogue[code]
    const statusCode = options.statusCode ?? e.statusCode
    // A refusal (4xx) is an answer the gateway meant to give, not a fault: no stack trace is
    // captured for it. Capturing one cost ~5 µs per error, ~10× the rest of the constructor,
    // on every 401, 404 and 429 of a flood (docs/performance.md). A `cause` keeps its own stack.
    const limit = Error.stackTraceLimit
    if (statusCode < 500) Error.stackTraceLimit = 0
    super(options.message ?? e.message, options.cause === undefined ? undefined : { cause: options.cause })
    Error.stackTraceLimit = limit
    this.name = 'GatewayError'
    this.code = code
    this.statusCode = statusCode
    this.fix = e.fix
    this.retryable = e.retryable
    this.service = options.service
    this.data = options.data
  }

  /** The plain form that crosses Redis (STYLE §5). Never carries a stack. */
  toWire (): WireErrorShape {
    return { code: this.code, message: this.message, statusCode: this.statusCode, retryable: this.retryable, data: this.data }
  }
}

interface WireErrorShape { code: string, message: string, statusCode: number, retryable: boolean, data: unknown }

export function isGatewayError (value: unknown): value is GatewayError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kGatewayError] === true
}

export function isErrorCode (value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCatalogue, value)
}

/** Rebuilds an error that crossed Redis as plain data; unknown codes become GW_ERR_SERVICE_HANDLER. */
export function errorFromWire (wire: { code?: unknown, message?: unknown, statusCode?: unknown, data?: unknown }, service?: string): GatewayError {
  const code = isErrorCode(wire.code) ? wire.code : 'GW_ERR_SERVICE_HANDLER'
  const opts: GatewayErrorOptions = { service }
  if (typeof wire.message === 'string') opts.message = wire.message
  if (typeof wire.statusCode === 'number' && wire.statusCode >= 400 && wire.statusCode <= 599) opts.statusCode = wire.statusCode
  return new GatewayError(code, opts)
}

/** The JSON body a client receives for an error. No stacks, no internal addresses. */
export function errorBody (err: GatewayError, requestId: string): { error: Record<string, unknown> } {
  const error: Record<string, unknown> = { code: err.code, message: err.message, requestId }
  if (err.service !== undefined) error.service = err.service
  if (err.data !== undefined) Object.assign(error, err.data)
  return { error }
}
