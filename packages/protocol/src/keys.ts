/**
 * Every Redis key, channel and stream name Switchyard builds, as
 * `<prefix>:<kind>:<name>` (STYLE §3). Prism-compatible channels
 * (`requestChannel`, `responseChannel`) are configured by the user and used as given.
 */

/** @default "switchyard" */
export const DEFAULT_PREFIX = 'switchyard'

/** The channel a gateway instance receives pub/sub replies on (PROTOCOL §1.1). */
export function responseChannelFor (responseChannel: string, instanceId: string): string {
  return `${responseChannel}.${instanceId}`
}
