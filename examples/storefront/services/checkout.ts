/**
 * Checkout over Redis Streams with the SDK: each order is handled by exactly
 * one replica, survives a replica crash, and is idempotent by request id.
 */
import { serve, type Service } from '@switchyard/service'

export async function checkoutService (url: string, prefix: string): Promise<Service> {
  let orders = 0
  return await serve({
    redis: url,
    prefix,
    service: 'checkout',
    stream: true,
    handler: async (request) => {
      const body = request.body as { items?: Array<{ sku: string, qty: number }> } | undefined
      if (body?.items === undefined || body.items.length === 0) return { status: 400, body: { error: 'expected { items: [{ sku, qty }] }' } }
      orders++
      return { status: 201, body: { order: `o-${orders}`, items: body.items, status: 'confirmed' } }
    }
  })
}
