/**
 * Messaging, written exactly the way Prism's docs write a Redis service: a
 * plain Redis client, no SDK. It subscribes to its request channel, parses
 * each message and publishes `{ id, service, response }` on `responseChannel`.
 */
import { Redis } from 'ioredis'

export async function messagingService (url: string, requestChannel: string): Promise<() => void> {
  const subscriber = new Redis(url)
  const publisher = new Redis(url)
  await subscriber.subscribe(requestChannel)
  subscriber.on('message', (_channel: string, message: string) => {
    let redisHttpRequest
    try { redisHttpRequest = JSON.parse(message) } catch { return }
    if (redisHttpRequest.type !== 'request') return // rollbacks carry no responseChannel
    const user = redisHttpRequest.request.params.user as string
    const response = JSON.stringify({
      id: redisHttpRequest.id,
      service: 'messaging',
      response: { status: 200, body: { user, unread: user.length % 4, inbox: [`Welcome back, ${user}`] } }
    })
    publisher.publish(redisHttpRequest.responseChannel, response)
  })
  return () => { subscriber.disconnect(); publisher.disconnect() }
}
