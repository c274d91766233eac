/**
 * Helpers for the processes the harness starts (backend, anchors, Redis
 * service, load worker). Each one prints a line the harness waits for, and
 * exits when the harness goes away: its stdin is a pipe from the harness, so
 * EOF on stdin means the parent died (even by SIGKILL), and nothing is left behind.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Exits when the parent's end of stdin closes; runs `onExit` first (bounded to 2 s). */
export function exitWithParent (onExit?: () => Promise<void> | void): void {
  let leaving = false
  const leave = (): void => {
    if (leaving) return
    leaving = true
    const force = setTimeout(() => process.exit(0), 2000)
    force.unref()
    Promise.resolve(onExit?.()).catch(() => {}).finally(() => process.exit(0))
  }
  process.stdin.on('end', leave)
  process.stdin.on('close', leave)
  process.stdin.on('error', leave)
  process.stdin.resume()
  process.once('SIGTERM', leave)
  process.once('SIGINT', leave)
}

/** Listens on 127.0.0.1 (port 0 unless given) and prints `listening on http://127.0.0.1:PORT`. */
export async function listenLoopback (server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  process.stdout.write(`listening on ${address}\n`)
  return address
}

/** Reads `--name value` from argv. */
export function argValue (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? undefined : process.argv[i + 1]
}

/** Like `argValue`, but the flag is required. */
export function requiredArg (name: string): string {
  const v = argValue(name)
  if (v === undefined) {
    process.stderr.write(`missing --${name}\n`)
    process.exit(2)
  }
  return v
}
