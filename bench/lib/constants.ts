/** Names and sizes shared by the harness and the processes it starts. */

/** Size of the backend's /big body (1 MiB). */
export const BIG_BYTES = 1024 * 1024

/** Key prefix of everything the gateway and the SDK own in the private Redis. */
export const REDIS_PREFIX = 'bench'

/** The service's name in the gateway config, in its replies, and for the SDK. */
export const SERVICE_NAME = 'svc'

/** The pub/sub request channel of the Redis service (Prism's `requestChannel`). */
export const REQUEST_CHANNEL = 'bench:svc'

/** The gateway's `http.redis.responseChannel` (it appends `.<instanceId>`). */
export const GATEWAY_RESPONSE_CHANNEL = 'bench:responses'

/** HS256 secret of the JWT scenario; a benchmark-only value. */
export const JWT_SECRET = 'switchyard-bench-secret-0123456789abcdef'
