/**
 * `switchyard` — start | validate | routes | init | schema (PRODUCT §6.1).
 * Exit codes: 0 ok, 1 invalid or unloadable config, 2 bad usage.
 */
import cluster from 'node:cluster'
import { existsSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { isGatewayError } from '@switchyard/protocol'
import { loadConfigFile, readConfigFile } from './config/load.js'
import { configIssues, unsupportedUses } from './config/validate.js'
import { Config } from './config/schema.js'
import { createGateway, SUPPORTED_SERVICE_TYPES } from './gateway.js'
import { SUPPORTED_POLICY_KEYS } from './policies/index.js'

const USAGE = `Usage: switchyard <command> [options]

Commands:
  start -c <config> [--port N] [--host H] [--workers N]   run the gateway
  validate -c <config>                                     check a config, list every error with its path
  routes -c <config>                                       print the route table
  init [file]                                              write a starter config (default switchyard.config.cjs)
  schema                                                   print the config's JSON Schema (for editors)
`

function fail (message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n')
  process.exit(code)
}

function describe (err: unknown): string {
  if (isGatewayError(err)) return `${err.code}: ${err.message}`
  return err instanceof Error ? err.message : String(err)
}

async function main (): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      workers: { type: 'string', short: 'w' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  const command = positionals[0]
  if (values.help === true || command === undefined) { process.stdout.write(USAGE); return }
  const needConfig = (): string => values.config ?? fail(`switchyard ${command}: -c <config> is required\n\n${USAGE}`, 2)

  switch (command) {
    case 'validate': {
      const file = needConfig()
      let raw: unknown
      try { raw = await readConfigFile(file) } catch (err) { fail(describe(err)) }
      const issues = configIssues(raw)
      if (issues.length > 0) fail(`${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'}\n` + issues.map(i => `  ${i.path}: ${i.message}`).join('\n'))
      const later = unsupportedUses(raw as never, SUPPORTED_SERVICE_TYPES, SUPPORTED_POLICY_KEYS)
      for (const u of later) process.stdout.write(`warning: ${u.path}: ${u.feature} is not supported yet; start will refuse it\n`)
      if (later.length === 0) {
        // Policies check their own options when the gateway is built: build it, without listening.
        try {
          const gw = createGateway(raw as never, { logger: (await import('pino')).pino({ level: 'silent' }) })
          await gw.close()
        } catch (err) { fail(`${file}: ${describe(err)}`) }
      }
      process.stdout.write(`${file}: valid\n`)
      return
    }
    case 'routes': {
      const file = needConfig()
      let gw
      try { gw = createGateway(await loadConfigFile(file), { logger: (await import('pino')).pino({ level: 'silent' }) }) } catch (err) { fail(describe(err)) }
      const rows = gw.routes().map(r => [r.method, r.path, r.services.map(s => `${s.name} (${s.type}${s.stage !== undefined ? `, stage ${s.stage}` : ''})`).join(', '), r.mode])
      const head = ['METHOD', 'PATH', 'SERVICES', 'MODE']
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
      for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n')
      await gw.close()
      return
    }
    case 'init': {
      const file = positionals[1] ?? 'switchyard.config.cjs'
      if (existsSync(file)) fail(`${file} exists; not overwriting`)
      writeFileSync(file, STARTER)
      process.stdout.write(`wrote ${file}; run: switchyard start -c ${file}\n`)
      return
    }
    case 'schema':
      process.stdout.write(JSON.stringify(Config, null, 2) + '\n')
      return
    case 'start': {
      const file = needConfig()
      const port = values.port === undefined ? undefined : Number(values.port)
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) fail(`--port: expected a port number, got ${values.port}`, 2)
      let config
      try { config = await loadConfigFile(file) } catch (err) { fail(describe(err)) }
      const workers = values.workers === undefined ? config.workers ?? 1 : Number(values.workers)
      if (!Number.isInteger(workers) || workers < 1) fail(`--workers: expected a positive integer, got ${values.workers}`, 2)
      if (workers > 1 && cluster.isPrimary) {
        for (let i = 0; i < workers; i++) cluster.fork()
        let listening = 0
        cluster.on('listening', (_w, addr) => {
          if (++listening === workers) process.stdout.write(`listening on http://${addr.address === '0.0.0.0' || addr.address === '::' || addr.address == null ? '127.0.0.1' : addr.address}:${addr.port} (${workers} workers)\n`)
        })
        cluster.on('exit', (w, code) => { if (!stopping) { process.stderr.write(`worker ${w.process.pid} exited (${code}); restarting\n`); cluster.fork() } })
        let stopping = false
        const stop = (): void => { stopping = true; for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM') }
        process.once('SIGTERM', stop)
        process.once('SIGINT', stop)
        return
      }
      let gw
      try { gw = createGateway(config) } catch (err) { fail(describe(err)) }
      // Handlers first: a signal that arrives right after the address is printed must drain, not kill.
      const shutdown = (signal: string): void => {
        gw.log.info({ signal }, 'shutting down')
        gw.close().then(() => process.exit(0), () => process.exit(1))
      }
      process.once('SIGTERM', () => shutdown('SIGTERM'))
      process.once('SIGINT', () => shutdown('SIGINT'))
      let address
      try { address = await gw.listen(port, values.host) } catch (err) { fail(`cannot listen: ${describe(err)}`) }
      if (cluster.isPrimary) process.stdout.write(`listening on ${address}\n`)
      return
    }
    default:
      fail(`unknown command: ${command}\n\n${USAGE}`, 2)
  }
}

const STARTER = `// Switchyard config (Prism-compatible). Docs: docs/config.md
module.exports = {
  http: {
    routes: {
      '/users/:id': {
        GET: {
          services: {
            users: { type: 'http', url: 'http://127.0.0.1:3001/users/:id', timeout: 5000 }
          }
        }
      }
    }
  }
}
`

main().catch((err: unknown) => fail(describe(err)))
