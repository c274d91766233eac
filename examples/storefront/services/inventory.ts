/** Inventory: stock per product, readable and adjustable over HTTP. */
import { createServer, type Server } from 'node:http'

export function inventoryService (): Server {
  const stock: Record<string, number> = { p1: 12, p2: 3, p3: 0 }
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const m = /^\/inventory\/([^/]+)$/.exec(url.pathname)
    res.setHeader('content-type', 'application/json')
    if (m === null) { res.statusCode = 404; res.end('{"error":"not found"}'); return }
    const sku = decodeURIComponent(m[1]!)
    if (req.method === 'GET') { res.end(JSON.stringify({ sku, available: stock[sku] ?? 0 })); return }
    if (req.method === 'POST') {
      let body = ''
      req.on('data', (c: Buffer) => { body += c.toString() })
      req.on('end', () => {
        try {
          const { delta } = JSON.parse(body) as { delta: number }
          stock[sku] = (stock[sku] ?? 0) + Number(delta)
          res.end(JSON.stringify({ sku, available: stock[sku] }))
        } catch {
          res.statusCode = 400
          res.end('{"error":"expected {\\"delta\\": number}"}')
        }
      })
      return
    }
    res.statusCode = 405
    res.end('{"error":"method not allowed"}')
  })
}
