/** Reviews: a slow-ish, optional service — the product page works without it. */
import { createServer, type Server } from 'node:http'

export function reviewsService (): Server {
  return createServer((req, res) => {
    const m = /^\/reviews\/([^/]+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname)
    res.setHeader('content-type', 'application/json')
    if (m === null) { res.statusCode = 404; res.end('[]'); return }
    res.end(JSON.stringify([{ stars: 5, text: `Love my ${decodeURIComponent(m[1]!)}` }]))
  })
}
