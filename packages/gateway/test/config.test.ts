/**
 * PRODUCT §6.2: every config error at once, each with its path; keys of later
 * features validate (they are Prism's) but start refuses them, naming the path.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { isGatewayError, type GatewayError } from '@switchyard/protocol'
import { configIssues, validateConfig, type ConfigIssue } from '../src/config/validate.js'
import { createGateway } from '../src/gateway.js'
import type { GatewayConfig } from '../src/config/types.js'

const silent = pino({ level: 'silent' })

function thrown (fn: () => unknown): GatewayError {
  try {
    fn()
  } catch (err) {
    assert.ok(isGatewayError(err), String(err))
    return err
  }
  assert.fail('expected a throw')
}

const BAD = {
  htp: {},
  server: { port: 'eighty' },
  http: {
    routes: {
      '/users': {
        GET: {
          services: {
            userservice: { type: 'http', url: 'not a url' },
            extra: { type: 'http', url: 'http://ok.example/x', tiemout: 5 },
            messages: { type: 'redis' }
          }
        },
        FETCH: { services: {} }
      },
      noslash: { GET: { services: { a: { type: 'http', url: 'ftp://files.example/' } } } }
    }
  }
}

const EXPECTED: ConfigIssue[] = [
  { path: 'htp', message: 'unknown key' },
  { path: 'server.port', message: 'expected integer' },
  { path: 'http.routes["/users"].GET.services.userservice.url', message: 'expected a URL' },
  { path: 'http.routes["/users"].GET.services.extra.tiemout', message: 'unknown key' },
  { path: 'http.routes["/users"].GET.services.messages.requestChannel', message: 'required' },
  { path: 'http.routes["/users"].FETCH', message: 'unknown method; expected one of GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD, ALL' },
  { path: 'http.routes.noslash', message: 'a route path must start with "/"' },
  { path: 'http.routes.noslash.GET.services.a.url', message: 'expected a URL' }
]

test('validation reports every error at once, each with its path', () => {
  const issues = configIssues(BAD)
  const key = (i: ConfigIssue): string => `${i.path}: ${i.message}`
  assert.deepEqual(issues.map(key).sort(), EXPECTED.map(key).sort())

  const err = thrown(() => validateConfig(BAD))
  assert.equal(err.code, 'GW_ERR_CONFIG_INVALID')
  for (const i of EXPECTED) assert.ok(err.message.includes(`${i.path}: ${i.message}`), `message lacks ${i.path}\n${err.message}`)
  assert.match(err.message, /8 errors/)
  assert.deepEqual((err.data as { issues: ConfigIssue[] }).issues, issues)

  // createGateway validates the same way before doing anything else.
  const again = thrown(() => createGateway(BAD as unknown as GatewayConfig, { logger: silent }))
  assert.equal(again.code, 'GW_ERR_CONFIG_INVALID')
  assert.deepEqual((again.data as { issues: ConfigIssue[] }).issues, issues)
})

test('more config errors: wrong types, an empty route, a wrong service type', () => {
  const issues = configIssues({
    logging: { level: 'loud' },
    http: {
      routes: {
        '/a': { GET: { services: {} } },
        '/b': { POST: { services: { s: { type: 'soap', url: 'http://x/' } } } },
        '/c': { PUT: { stage: 1, services: { s: { type: 'http', url: ['http://a/', 'nope'], timeout: -1 } } } }
      }
    }
  })
  const byPath = new Map(issues.map(i => [i.path, i.message]))
  assert.equal(byPath.get('logging.level'), 'expected one of fatal, error, warn, info, debug, trace, silent')
  assert.equal(byPath.get('http.routes["/a"].GET.services'), 'a route needs at least one service')
  assert.equal(byPath.get('http.routes["/b"].POST.services.s.type'), 'expected "http", "redis" or "redis-stream"')
  assert.equal(byPath.get('http.routes["/c"].PUT.stage'), 'unknown key')
  assert.equal(byPath.get('http.routes["/c"].PUT.services.s.url[1]'), 'expected a URL')
  assert.ok(byPath.has('http.routes["/c"].PUT.services.s.timeout'))
  assert.deepEqual(configIssues('module.exports = {}'), [{ path: '(root)', message: 'expected an object (the config)' }])
})

test('a Prism config with Redis services and Prism-only keys is valid', () => {
  const prism = {
    instanceId: 'gw-1',
    http: {
      routes: {
        '/users/:id': {
          GET: {
            useStream: false,
            services: {
              userservice: { type: 'redis', requestChannel: 'input', numRequestChannels: 2, timeout: 5000, mergeField: 'user' },
              accounts: { type: 'http', url: 'http://accounts.example/users/:id', stage: 1, awaitResponse: true }
            }
          }
        }
      },
      redis: { responseChannel: 'gw-responses', cleanupInterval: 10000 }
    },
    redis: { options: { host: '127.0.0.1' } },
    state: 'memory'
  }
  assert.deepEqual(configIssues(prism), [])
  assert.equal(validateConfig(prism), prism)
})

test('keys of later features validate, but createGateway refuses them with GW_ERR_CONFIG_UNSUPPORTED naming each path', () => {
  // Prism keys whose features are not built yet (the policies are).
  const later = {
    webSocket: { routes: {} },
    webJobs: { cleanup: { type: 'periodic', url: 'http://jobs.example/cleanup', interval: 1000 } },
    http: {
      plugins: { custom: { path: './plugin.js' } },
      routes: {
        '/users': {
          GET: { services: { userservice: { type: 'http', url: 'http://users.example/users' } } }
        }
      }
    }
  }
  assert.deepEqual(configIssues(later), [])
  const err = thrown(() => createGateway(later as unknown as GatewayConfig, { logger: silent }))
  assert.equal(err.code, 'GW_ERR_CONFIG_UNSUPPORTED')
  const paths = (err.data as { unsupported: Array<{ path: string }> }).unsupported.map(u => u.path).sort()
  assert.deepEqual(paths, ['http.plugins', 'webJobs', 'webSocket'])
  for (const p of paths) assert.ok(err.message.includes(p), err.message)
})
