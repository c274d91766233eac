/**
 * Prometheus metrics (prom-client), one registry per gateway so several
 * gateways in one process (tests, workers) do not collide.
 */
import { Counter, Histogram, Registry } from 'prom-client'

export class Metrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'route' | 'method' | 'status'>
  readonly #duration: Histogram<'route'>
  readonly #serviceCalls: Counter<'service' | 'type' | 'outcome'>
  readonly #rollbacks: Counter<'service' | 'outcome'>
  readonly #redisReplies: Counter<'outcome'>

  constructor () {
    const registers = [this.registry]
    this.#requests = new Counter({ name: 'switchyard_requests_total', help: 'Requests answered, by route, method and status', labelNames: ['route', 'method', 'status'], registers })
    this.#duration = new Histogram({ name: 'switchyard_request_duration_seconds', help: 'Time to answer a request', labelNames: ['route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers })
    this.#serviceCalls = new Counter({ name: 'switchyard_service_calls_total', help: 'Calls to services, by outcome (status or error code)', labelNames: ['service', 'type', 'outcome'], registers })
    this.#rollbacks = new Counter({ name: 'switchyard_rollbacks_total', help: 'Rollbacks sent or failed', labelNames: ['service', 'outcome'], registers })
    this.#redisReplies = new Counter({ name: 'switchyard_redis_replies_total', help: 'Replies read from Redis, by outcome (matched, malformed, unmatched, late)', labelNames: ['outcome'], registers })
  }

  // Labeled children cached per label set: labels() hashes its arguments on every call.
  readonly #requestChildren = new Map<string, { count: { inc: () => void }, time: { observe: (v: number) => void } }>()

  request (route: string, method: string, status: number, seconds: number): void {
    const key = `${route}\0${method}\0${status}`
    let c = this.#requestChildren.get(key)
    if (c === undefined) {
      c = { count: this.#requests.labels(route, method, String(status)), time: this.#duration.labels(route) }
      this.#requestChildren.set(key, c)
    }
    c.count.inc()
    c.time.observe(seconds)
  }

  readonly #serviceChildren = new Map<string, { inc: () => void }>()

  serviceCall (service: string, type: string, outcome: string): void {
    const key = `${service}\0${type}\0${outcome}`
    let c = this.#serviceChildren.get(key)
    if (c === undefined) {
      c = this.#serviceCalls.labels(service, type, outcome)
      this.#serviceChildren.set(key, c)
    }
    c.inc()
  }

  rollback (service: string, outcome: 'sent' | 'failed'): void { this.#rollbacks.labels(service, outcome).inc() }
  redisReply (outcome: 'matched' | 'malformed' | 'unmatched' | 'late'): void { this.#redisReplies.labels(outcome).inc() }

  async text (): Promise<string> { return await this.registry.metrics() }
}
