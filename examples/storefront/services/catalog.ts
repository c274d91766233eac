/** Product catalogue: an HTTP service with a small in-memory list. */
import { createServer, type Server } from 'node:http'

const products: Record<string, { id: string, name: string, price: number }> = {
  p1: { id: 'p1', name: 'Espresso cup', price: 9.5 },
  p2: { id: 'p2', name: 'Moka pot', price: 34 },
  p3: { id: 'p3', name: 'Grinder', price: 79 }
}

export function catalogService (): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const m = /^\/products(?:\/([^/]+))?$/.exec(url.pathname)
    res.setHeader('content-type', 'application/json')
    if (m === null || req.method !== 'GET') { res.statusCode = 404; res.end('{"error":"not found"}'); return }
    if (m[1] === undefined) { res.end(JSON.stringify({ products: Object.values(products) })); return }
    const p = products[decodeURIComponent(m[1])]
    if (p === undefined) { res.statusCode = 404; res.end('{"error":"no such product"}'); return }
    res.end(JSON.stringify(p))
  })
}
