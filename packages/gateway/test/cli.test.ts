/**
 * PRODUCT §1.1 and §6.1–§6.2: `switchyard start` on a Prism CommonJS config
 * (and YAML, JSON, TypeScript with defineConfig), exit 0 on SIGTERM;
 * `validate` lists every error path; `routes` prints the table.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startBackend, json, type Backend } from './helpers/backend.js'
import { runCli, startCli } from './helpers/cli.js'

const GATEWAY_PACKAGE = fileURLToPath(new URL('../', import.meta.url))

describe('switchyard CLI', { concurrency: 4, timeout: 90_000 }, () => {
  let dir: string
  let backend: Backend
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-'))
    backend = await startBackend((req, res) => json(res, 200, { from: 'backend', url: req.url }))
  })
  after(async () => {
    await backend.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** A Prism-style config object as source text. */
  const prismRoutes = (): Record<string, unknown> => ({
    '/users/:id': { GET: { services: { userservice: { type: 'http', url: `${backend.url}/users/:id` } } } }
  })

  async function serves (url: string, id: string): Promise<void> {
    const res = await fetch(`${url}/users/${id}`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { from: 'backend', url: `/users/${id}` })
  }

  test('start on a Prism CommonJS .js config serves, and exits 0 on SIGTERM', async () => {
    const file = join(dir, 'prism.config.js')
    await writeFile(file, `// A Prism config, unchanged\nmodule.exports = {\n  http: {\n    routes: ${JSON.stringify(prismRoutes())}\n  }\n}\n`)
    const gw = await startCli(file)
    try {
      await serves(gw.url, 'cjs')
    } finally {
      const { code, signal } = await gw.stop()
      assert.equal(signal, null)
      assert.equal(code, 0, gw.stderr())
    }
  })

  test('SIGINT the moment the address is printed still drains and exits 0', async () => {
    const file = join(dir, 'prism-sigint.config.js')
    await writeFile(file, `module.exports = { http: { routes: ${JSON.stringify(prismRoutes())} } }\n`)
    const gw = await startCli(file)
    // No request first: the signal goes out as soon as the line is read.
    gw.child.kill('SIGINT')
    const [code, signal] = await once(gw.child, 'exit') as [number | null, NodeJS.Signals | null]
    assert.equal(signal, null)
    assert.equal(code, 0, gw.stderr())
  })

  test('start on a module.exports .js config inside a "type": "module" package', async () => {
    const sub = join(dir, 'esm-package')
    await mkdir(sub)
    await writeFile(join(sub, 'package.json'), '{ "type": "module" }\n')
    const file = join(sub, 'prism.config.js')
    await writeFile(file, `module.exports = { logging: { level: 'silent' }, http: { routes: ${JSON.stringify(prismRoutes())} } }\n`)
    const gw = await startCli(file)
    try {
      await serves(gw.url, 'esm-pkg')
    } finally {
      assert.equal((await gw.stop()).code, 0, gw.stderr())
    }
  })

  test('start on a YAML config', async () => {
    const file = join(dir, 'gateway.yaml')
    await writeFile(file, [
      'logging:',
      '  level: silent',
      'http:',
      '  routes:',
      '    /users/:id:',
      '      GET:',
      '        services:',
      '          userservice:',
      '            type: http',
      `            url: ${backend.url}/users/:id`,
      ''
    ].join('\n'))
    const gw = await startCli(file)
    try {
      await serves(gw.url, 'yaml')
    } finally {
      assert.equal((await gw.stop()).code, 0, gw.stderr())
    }
  })

  test('start on a JSON config', async () => {
    const file = join(dir, 'gateway.json')
    await writeFile(file, JSON.stringify({ logging: { level: 'silent' }, http: { routes: prismRoutes() } }, null, 2))
    const gw = await startCli(file)
    try {
      await serves(gw.url, 'json')
    } finally {
      assert.equal((await gw.stop()).code, 0, gw.stderr())
    }
  })

  test('start on a TypeScript config with defineConfig from @switchyard/gateway', async () => {
    const sub = join(dir, 'ts-project')
    await mkdir(join(sub, 'node_modules', '@switchyard'), { recursive: true })
    // The package as an installed dependency of the config's project.
    await symlink(GATEWAY_PACKAGE, join(sub, 'node_modules', '@switchyard', 'gateway'), 'dir')
    const file = join(sub, 'switchyard.config.ts')
    await writeFile(file, [
      "import { defineConfig } from '@switchyard/gateway'",
      '',
      'const id: string = ":id"',
      'export default defineConfig({',
      "  logging: { level: 'silent' },",
      '  http: {',
      '    routes: {',
      "      '/users/:id': {",
      `        GET: { services: { userservice: { type: 'http', url: '${backend.url}/users/' + id } } }`,
      '      }',
      '    }',
      '  }',
      '})',
      ''
    ].join('\n'))
    const gw = await startCli(file)
    try {
      await serves(gw.url, 'ts')
    } finally {
      assert.equal((await gw.stop()).code, 0, gw.stderr())
    }
  })

  test('validate on a bad config exits non-zero and prints every error path', async () => {
    const file = join(dir, 'bad.js')
    await writeFile(file, `module.exports = ${JSON.stringify({
      htp: {},
      http: {
        routes: {
          '/users': { GET: { services: { userservice: { type: 'http', url: 'not a url' }, messages: { type: 'redis' } } } },
          '/orders': { POST: { services: { orders: { type: 'http', url: 'http://orders.example/', tiemout: 5 } } } }
        }
      }
    })}\n`)
    const r = await runCli(['validate', '-c', file])
    assert.notEqual(r.code, 0)
    for (const line of [
      'htp: unknown key',
      'http.routes["/users"].GET.services.userservice.url: expected a URL',
      'http.routes["/users"].GET.services.messages.requestChannel: required',
      'http.routes["/orders"].POST.services.orders.tiemout: unknown key'
    ]) assert.ok(r.stderr.includes(line), `missing "${line}" in:\n${r.stderr}`)
    assert.match(r.stderr, /4 errors/)
  })

  test('validate on a good config exits 0; an unloadable one exits non-zero', async () => {
    const file = join(dir, 'good.cjs')
    await writeFile(file, `module.exports = { http: { routes: ${JSON.stringify(prismRoutes())} } }\n`)
    const ok = await runCli(['validate', '-c', file])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /valid/)

    const broken = join(dir, 'broken.js')
    await writeFile(broken, 'module.exports = { http: \n')
    const bad = await runCli(['validate', '-c', broken])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /GW_ERR_CONFIG_LOAD/)
  })

  test('routes prints the route table', async () => {
    const file = join(dir, 'routes.cjs')
    await writeFile(file, `module.exports = ${JSON.stringify({
      http: {
        routes: {
          '/users/:id': { GET: { services: { userservice: { type: 'http', url: `${backend.url}/users/:id` } } } },
          '/profile': {
            GET: {
              services: {
                users: { type: 'http', url: `${backend.url}/u`, stage: 1 },
                orders: { type: 'http', url: `${backend.url}/o`, stage: 2 }
              }
            }
          }
        }
      }
    })}\n`)
    const r = await runCli(['routes', '-c', file])
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trim().split('\n').map(l => l.split(/\s{2,}/))
    assert.deepEqual(lines[0], ['METHOD', 'PATH', 'SERVICES', 'MODE'])
    assert.deepEqual(lines.slice(1).sort(), [
      ['GET', '/profile', 'users (http, stage 1), orders (http, stage 2)', 'buffered'],
      ['GET', '/users/:id', 'userservice (http)', 'passthrough']
    ])
  })
})
