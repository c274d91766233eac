/**
 * Anchor: fastify 5 with @fastify/reply-from, the usual "proxy in fastify".
 * Bodies are not parsed (one catch-all content-type parser), so both
 * directions stream; reply-from's own undici defaults (128 connections, no pipelining).
 * Usage: node --import tsx bench/anchors/fastify-reply-from.ts --upstream http://127.0.0.1:PORT
 */
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'
import { argValue, exitWithParent, requiredArg } from '../lib/child.js'

const app = Fastify({ logger: false, keepAliveTimeout: 65_000 })
await app.register(replyFrom, { base: requiredArg('upstream') })
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })
app.all('/*', (request, reply) => reply.from(request.url))

exitWithParent(async () => { await app.close() })
const address = await app.listen({ port: Number(argValue('port') ?? 0), host: '127.0.0.1' })
process.stdout.write(`listening on ${address}\n`)
