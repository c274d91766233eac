/**
 * Loading a config file: CommonJS (`module.exports`, Prism's form), ESM or
 * TypeScript with a default export, JSON or YAML. Loading never validates;
 * `loadConfigFile` = load → validate (all errors with paths).
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { GatewayError } from '@switchyard/protocol'
import { validateConfig } from './validate.js'
import type { GatewayConfig } from './schema.js'

function loadError (file: string, cause: unknown): GatewayError {
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new GatewayError('GW_ERR_CONFIG_LOAD', { message: `Cannot load config ${file}: ${reason}`, cause })
}

function unwrap (mod: unknown): unknown {
  // `export default {...}` and `module.exports = {...}` both arrive under `default` when imported.
  let v = mod
  for (let i = 0; i < 2; i++) {
    if (typeof v === 'object' && v !== null && 'default' in v && Object.keys(v).every(k => k === 'default' || k === '__esModule' || k === 'module.exports')) {
      v = (v as { default: unknown }).default
    }
  }
  return v
}

async function importModule (file: string): Promise<unknown> {
  const ext = extname(file)
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') {
    // When tsx is registered (the CLI registers it), a plain import shares the modules already
    // loaded. tsImport would load a second copy of everything the config imports — for
    // `@switchyard/gateway` that includes undici, whose second copy throws "Illegal constructor".
    try {
      return await import(pathToFileURL(file).href)
    } catch (err) {
      if ((err as { code?: string } | null)?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err
    }
    const { tsImport } = await import('tsx/esm/api')
    return await tsImport(pathToFileURL(file).href, import.meta.url)
  }
  if (ext === '.cjs') return createRequire(import.meta.url)(file)
  try {
    return await import(pathToFileURL(file).href)
  } catch (err) {
    // A `.js` file with `module.exports` inside a `"type": "module"` package: run it as CommonJS, as Prism did.
    if (err instanceof ReferenceError && /\b(module|exports|require) is not defined\b/.test(err.message)) {
      const { Module } = await import('node:module')
      const m = new Module(file) as unknown as { filename: string, paths: string[], exports: unknown, _compile(src: string, f: string): void }
      m.filename = file
      m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(resolve(file, '..'))
      m._compile(await readFile(file, 'utf8'), file)
      return m.exports
    }
    throw err
  }
}

/** Reads a config file without validating it. */
export async function readConfigFile (path: string): Promise<unknown> {
  const file = resolve(path)
  const ext = extname(file).toLowerCase()
  try {
    if (ext === '.json') return JSON.parse(await readFile(file, 'utf8'))
    if (ext === '.yaml' || ext === '.yml') return parseYaml(await readFile(file, 'utf8'))
    return unwrap(await importModule(file))
  } catch (err) {
    throw loadError(path, err)
  }
}

/** Reads and validates a config file; throws GW_ERR_CONFIG_LOAD or GW_ERR_CONFIG_INVALID. */
export async function loadConfigFile (path: string): Promise<GatewayConfig> {
  return validateConfig(await readConfigFile(path))
}
