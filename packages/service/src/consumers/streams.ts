/**
 * Redis Streams services (`type: "redis-stream"`, PROTOCOL §2): the replicas of
 * a service read one stream in one consumer group, so each request goes to one
 * replica at a time; docs/protocol.md §2 is the algorithm this file implements.
 *
 * Ordering that makes it safe: reply record (SET done key) → PUBLISH → XACK,
 * sent in that order on one connection, ack last. A crash before the ack leaves the entry pending; another
 * replica reclaims it after `claimIdleMs` and answers from the done key if the
 * handler had finished, or runs it again if not (at-least-once, id = idempotency key).
 */
import { readFileSync } from 'node:fs'
import { DEAD_LETTER_MAXLEN, STREAM_FIELD, deadLetterKey, doneKey, type HttpResponse, type ReplyMessage } from '@switchyard/protocol'
import type { Redis } from 'ioredis'
import { closeConnection, connect } from '../connections.js'
import { errField } from '../logger.js'
import { parseMessage, type Parsed } from '../message.js'
import type { ResolvedOptions } from '../options.js'
import { pause, withTimeout } from '../time.js'
import type { Consumer, ConsumerContext } from './types.js'

type StreamOpts = Extract<ResolvedOptions['transport'], { kind: 'redis-stream' }>
type Fields = string[] | null
type Entry = [id: string, fields: Fields]

/** What the read loop learnt about an entry before dispatching it: its parsed message and, for a request, its stored reply (null: none). */
interface Known { parsed: Parsed, stored?: string | null }

const deleteIdleConsumerLua = readFileSync(new URL('../scripts/deleteIdleConsumer-1.lua', import.meta.url), 'utf8')

interface WithScripts {
  switchyardDeleteIdleConsumer: (stream: string, group: string, consumer: string) => Promise<number>
}

function isNoGroup (err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP')
}

function fieldValue (fields: Fields, name: string): string | undefined {
  if (fields === null) return undefined
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
}

/** Orders two decimal strings without leading zeros, as numbers of any size. */
function compareDecimal (a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length
  return a < b ? -1 : a > b ? 1 : 0
}

/** Orders two stream ids (`<ms>-<seq>`, or `-` / `+` for the smallest and largest): negative, 0 or positive. */
function compareIds (a: string, b: string): number {
  if (a === b) return 0
  if (a === '-' || b === '+') return -1
  if (a === '+' || b === '-') return 1
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  return compareDecimal(am, bm) || compareDecimal(as, bs)
}

/** Throws the first error of a pipeline's results. */
function check (results: Array<[Error | null, unknown]> | null): void {
  const failed = results?.find(([err]) => err !== null)
  if (failed !== undefined) throw failed[0]
}

export class StreamsConsumer implements Consumer {
  readonly stream: string
  readonly group: string
  readonly consumer: string
  readonly deadLetterStream: string
  readonly #ctx: ConsumerContext
  readonly #reader: Redis
  readonly #inFlight = new Set<string>()
  #closing = false
  #signalClosing!: () => void
  readonly #closingPromise = new Promise<void>(resolve => { this.#signalClosing = resolve })
  #loop: Promise<void> | undefined
  #reclaimTimer: NodeJS.Timeout | undefined
  #reclaiming: Promise<void> | undefined
  #stopped = false
  #cursor = '0-0'
  /**
   * True from the moment a read returns entries until the next read is sent:
   * the reader connection is idle, so replies written meanwhile go on it, ahead
   * of that read and in the same write (see #complete).
   */
  #readerIdle = false
  /**
   * The last completion sent on the reader connection. Redis answers a connection's
   * commands in order, so once it settles every earlier one has: stopIntake waits for it.
   */
  #lastOnReader: Promise<unknown> | undefined
  /**
   * Entries up to this id may have been delivered before (the group was created
   * again from `0`), so they are looked up even when the gateway minted their
   * request id. `-` (the smallest id): none; `+`: all, when the stream's last id could not be read.
   */
  #lookUpThrough = '-'

  constructor (ctx: ConsumerContext, t: StreamOpts) {
    this.#ctx = ctx
    this.stream = t.stream
    this.group = t.group
    this.consumer = t.consumer
    this.deadLetterStream = deadLetterKey(t.stream)
    // Its own connection: XREADGROUP BLOCK holds it for up to `blockMs` (STYLE §3).
    this.#reader = connect(ctx.opts.redis, 'reader', ctx.opts.service, ctx.opts.logger)
    ctx.command.defineCommand('switchyardDeleteIdleConsumer', { numberOfKeys: 1, lua: deleteIdleConsumerLua })
  }

  async start (): Promise<void> {
    await this.#ensureGroup('$')
    this.#loop = this.#readLoop()
    this.#scheduleReclaim(0)
  }

  /**
   * `$` at start: the group begins with what arrives from now on. `0` after a NOGROUP:
   * Redis lost the group (restarted without persistence), so every entry now in the
   * stream arrived after the loss and is still unanswered.
   */
  async #ensureGroup (startId: '$' | '0'): Promise<void> {
    try {
      await this.#ctx.command.xgroup('CREATE', this.stream, this.group, startId, 'MKSTREAM')
      this.#ctx.opts.logger.info({ stream: this.stream, group: this.group, startId }, 'created the consumer group')
      this.#ctx.emit('group.created', { stream: this.stream, group: this.group, startId })
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('BUSYGROUP')) return
      throw err
    }
  }

  async #readLoop (): Promise<void> {
    const { opts, executor } = this.#ctx
    let failures = 0
    while (!this.#closing) {
      await Promise.race([executor.slots.whenFree(), this.#closingPromise])
      if (this.#closing) break
      let reply: Array<[stream: string, entries: Entry[]]> | null
      try {
        this.#readerIdle = false
        reply = await this.#reader.xreadgroup(
          'GROUP', this.group, this.consumer,
          'COUNT', Math.max(1, executor.slots.free),
          'BLOCK', opts.blockMs,
          'STREAMS', this.stream, '>'
        ) as Array<[string, Entry[]]> | null
        failures = 0
      } catch (err) {
        if (this.#closing) break
        failures++
        let cause = err
        if (isNoGroup(err)) {
          opts.logger.warn({ stream: this.stream, group: this.group }, 'the consumer group is gone (Redis restarted?); creating it again')
          try {
            await this.#ensureGroup('0')
            await this.#lookUpUntilNow()
            continue
          } catch (e) {
            cause = e
          }
        }
        const backoffMs = Math.min(50 * 2 ** Math.min(failures, 7), 5000)
        opts.logger.warn({ stream: this.stream, err: errField(cause), backoffMs }, 'XREADGROUP failed; retrying')
        await pause(backoffMs, this.#closingPromise)
        continue
      }
      if (reply === null) continue
      this.#readerIdle = !this.#closing
      const entries = reply.flatMap(([, e]) => e)
      const known = await this.#lookUp(entries)
      for (let i = 0; i < entries.length; i++) this.#dispatch(entries[i]![0], entries[i]![1], 1, known[i])
      // One turn of the event loop before the next read: handlers that finish at once
      // write their replies on the idle reader, and the read follows them in the same write.
      await new Promise(resolve => setImmediate(resolve))
    }
  }

  /**
   * After the group was created again from `0`, every entry now in the stream may
   * have been answered before the loss: those are looked up whatever their ids.
   */
  async #lookUpUntilNow (): Promise<void> {
    try {
      const last = await this.#ctx.command.xrevrange(this.stream, '+', '-', 'COUNT', 1)
      const id = last[0]?.[0]
      if (id !== undefined && compareIds(id, this.#lookUpThrough) > 0) this.#lookUpThrough = id
    } catch (err) {
      this.#lookUpThrough = '+'
      this.#ctx.opts.logger.warn({ stream: this.stream, err: errField(err) }, 'could not read the stream\'s last id; every request is looked up from now on')
    }
  }

  /**
   * Sends a completion (SET, PUBLISH, XACK; or PUBLISH, XACK for a replay) on one
   * connection, so its commands keep their order: the reader while it is idle
   * between a read and the next, so that a batch's completions and the next
   * XREADGROUP share one write, and one read on Redis's side; else the command connection.
   */
  async #complete (commands: (c: Redis) => Array<Promise<unknown>>): Promise<void> {
    const conn = this.#readerIdle ? this.#reader : this.#ctx.command
    const sent = Promise.all(commands(conn))
    if (conn === this.#reader) this.#lastOnReader = sent
    await sent
  }

  /**
   * Parses a batch and looks up, in one MGET, the stored replies of its
   * requests (a client retry with an id already completed): one round trip a
   * batch, where a GET in #handle was one a request, taken while holding a
   * slot. If the MGET fails, #handle asks for itself.
   */
  async #lookUp (entries: readonly Entry[]): Promise<Array<Known | undefined>> {
    const { opts, command } = this.#ctx
    const known: Array<Known | undefined> = []
    const keys: string[] = []
    const asked: Known[] = []
    for (const [entryId, fields] of entries) {
      const raw = fieldValue(fields, STREAM_FIELD)
      if (raw === undefined) { known.push(undefined); continue }
      const k: Known = { parsed: parseMessage(raw) }
      known.push(k)
      if (k.parsed.ok && k.parsed.message.type === 'request') {
        // An id the gateway minted for this request cannot have a record, unless this entry was delivered before.
        if (k.parsed.message.newId === true && compareIds(entryId, this.#lookUpThrough) > 0) {
          k.stored = null
          continue
        }
        keys.push(doneKey(opts.prefix, opts.service, k.parsed.message.id))
        asked.push(k)
      }
    }
    if (keys.length === 0) return known
    try {
      const stored = await command.mget(keys)
      for (let i = 0; i < asked.length; i++) asked[i]!.stored = stored[i] ?? null
    } catch {}
    return known
  }

  #dispatch (entryId: string, fields: Fields, deliveries: number, known?: Known): void {
    const { opts, executor } = this.#ctx
    this.#inFlight.add(entryId)
    executor.tracker.track(this.#handle(entryId, fields, deliveries, known))
      .catch((err: unknown) => {
        // The entry stays pending: it is reclaimed and tried again after `claimIdleMs`.
        opts.logger.error({ stream: this.stream, entryId, err: errField(err) }, 'could not complete an entry; it stays pending')
      })
      .finally(() => this.#inFlight.delete(entryId))
  }

  async #handle (entryId: string, fields: Fields, deliveries: number, known?: Known): Promise<void> {
    const { opts, executor, command, emit } = this.#ctx
    await executor.slots.acquire()
    let held = true
    try {
      // Delivered but not started when close() began: leave it pending for another replica.
      if (this.#closing || executor.abandoned) return
      const raw = fieldValue(fields, STREAM_FIELD)
      if (raw === undefined) {
        await this.#deadLetter(entryId, '', `malformed: no \`${STREAM_FIELD}\` field`, deliveries)
        emit('message.rejected', { reason: `no \`${STREAM_FIELD}\` field`, entryId })
        return
      }
      const parsed = known?.parsed ?? parseMessage(raw)
      if (!parsed.ok) {
        await this.#deadLetter(entryId, raw, `malformed: ${parsed.reason}`, deliveries, parsed.id)
        emit('message.rejected', { reason: parsed.reason, entryId })
        return
      }
      const message = parsed.message
      const delivery = { entryId, deliveries }
      if (message.type === 'rollback') {
        // A failed rollback is not acknowledged: it is retried, then dead-lettered.
        const rollback = await executor.runRollback(message, delivery)
        if (executor.abandoned) return
        if (rollback.ok) await command.xack(this.stream, this.group, entryId)
        rollback.report()
        return
      }
      if (message.deadline !== undefined && Date.now() > message.deadline) {
        await command.xack(this.stream, this.group, entryId)
        opts.logger.info({ requestId: message.id, entryId, deadline: message.deadline }, 'acknowledged a request past its deadline without processing it')
        emit('request.skipped', { id: message.id, entryId, deliveries, reason: 'deadline' })
        return
      }
      const done = doneKey(opts.prefix, opts.service, message.id)
      const stored = known?.stored !== undefined ? known.stored : await command.get(done)
      if (stored !== null) {
        await this.#complete(c => [
          c.publish(message.responseChannel, stored),
          c.xack(this.stream, this.group, entryId)
        ])
        opts.logger.info({ requestId: message.id, entryId, deliveries }, 'request already completed; re-published its reply')
        emit('request.replayed', { id: message.id, entryId, deliveries })
        return
      }
      const outcome = await executor.runRequest(message, delivery)
      // close() gave up on this one: never ack unfinished work, another replica reclaims it.
      if (executor.abandoned) return
      // The handler is done: its slot goes to the next entry while the reply is written.
      executor.slots.release()
      held = false
      // Issued in this order on one connection, and sent with whatever else this turn sends
      // (auto-pipelining): one write for many requests, where pipeline() made one each.
      await this.#complete(c => [
        c.set(done, outcome.reply, 'PX', opts.idempotencyTtlMs),
        c.publish(message.responseChannel, outcome.reply),
        c.xack(this.stream, this.group, entryId)
      ])
      outcome.report()
    } finally {
      if (held) executor.slots.release()
    }
  }

  /**
   * XADD to `<stream>:dead` (capped), then XACK. A request the gateway may still be
   * waiting for gets a 500 reply at once rather than a timeout.
   */
  async #deadLetter (entryId: string, raw: string, reason: string, deliveries: number, id?: string): Promise<void> {
    const { opts, command, emit } = this.#ctx
    const fields = ['message', raw, 'reason', reason, 'deliveries', String(deliveries), 'consumer', this.consumer,
      'failedAt', String(Date.now()), 'entryId', entryId, 'group', this.group]
    if (id !== undefined) fields.push('id', id)
    const pipeline = command.pipeline()
      .xadd(this.deadLetterStream, 'MAXLEN', '~', DEAD_LETTER_MAXLEN, '*', ...fields)
      .xack(this.stream, this.group, entryId)
    const parsed = raw === '' ? undefined : parseMessage(raw)
    if (parsed?.ok === true && parsed.message.type === 'request' && (parsed.message.deadline ?? Infinity) > Date.now()) {
      const response: HttpResponse = {
        status: 500,
        body: { error: { code: 'GW_ERR_SERVICE_HANDLER', message: `The request was delivered ${deliveries} times without completing and was moved to the dead-letter stream` } }
      }
      pipeline.publish(parsed.message.responseChannel, JSON.stringify({ id: parsed.message.id, service: opts.service, response } satisfies ReplyMessage))
    }
    check(await pipeline.exec())
    opts.logger.warn({ stream: this.stream, entryId, requestId: id, reason, deliveries }, 'moved an entry to the dead-letter stream')
    emit('entry.dead-lettered', { entryId, id, reason, deliveries })
  }

  #scheduleReclaim (delayMs: number): void {
    if (this.#stopped) return
    this.#reclaimTimer = setTimeout(() => {
      this.#reclaiming = this.#reclaim().finally(() => {
        this.#reclaiming = undefined
        this.#scheduleReclaim(this.#ctx.opts.reclaimIntervalMs)
      })
    }, delayMs)
    this.#reclaimTimer.unref()
  }

  /**
   * 1. Renew the claim on entries still running here (XCLAIM … JUSTID resets their idle
   *    time without counting a delivery), so a slow handler is not taken for a dead one.
   * 2. Take over entries idle for `claimIdleMs` (XAUTOCLAIM), as many as there are free
   *    slots; an entry delivered more than `maxDeliveries` times goes to the dead letters.
   */
  async #reclaim (): Promise<void> {
    const { opts, command, executor, emit } = this.#ctx
    try {
      if (this.#inFlight.size > 0) {
        await command.xclaim(this.stream, this.group, this.consumer, 0, ...this.#inFlight, 'JUSTID')
      }
      const free = executor.slots.free
      if (this.#closing || free === 0) return
      const [next, entries] = await command.xautoclaim(this.stream, this.group, this.consumer, opts.claimIdleMs, this.#cursor, 'COUNT', free) as [string, Entry[], string[]?]
      this.#cursor = next
      const claimed: Entry[] = []
      const vanished: string[] = []
      for (const [entryId, fields] of entries) {
        if (this.#inFlight.has(entryId)) continue // ours, still running: the renewal above lagged
        // Redis 6.2 returns entries deleted from the stream with no fields (7.x drops them itself).
        if (fields === null) vanished.push(entryId)
        else claimed.push([entryId, fields])
      }
      if (vanished.length > 0) await command.xack(this.stream, this.group, ...vanished)
      if (claimed.length === 0) return
      const pending = command.pipeline()
      for (const [entryId] of claimed) pending.xpending(this.stream, this.group, entryId, entryId, 1)
      const counts = await pending.exec()
      opts.logger.info({ stream: this.stream, count: claimed.length }, 'reclaimed entries left pending by another consumer')
      emit('entries.reclaimed', { count: claimed.length })
      claimed.forEach(([entryId, fields], i) => {
        const row = (counts?.[i]?.[1] as Array<[string, string, number, number]> | undefined)?.[0]
        const deliveries = row === undefined ? 1 : Number(row[3])
        if (deliveries > opts.maxDeliveries) {
          const raw = fieldValue(fields, STREAM_FIELD) ?? ''
          const parsed = raw === '' ? undefined : parseMessage(raw)
          const id = parsed === undefined ? undefined : parsed.ok ? parsed.message.id : parsed.id
          executor.tracker.track(this.#deadLetter(entryId, raw, `delivered ${deliveries} times (maxDeliveries ${opts.maxDeliveries})`, deliveries, id))
            .catch((err: unknown) => opts.logger.error({ entryId, err: errField(err) }, 'could not dead-letter an entry; it stays pending'))
        } else {
          this.#dispatch(entryId, fields, deliveries)
        }
      })
    } catch (err) {
      if (this.#stopped) return
      // NOGROUP: the read loop creates the group again.
      if (isNoGroup(err)) opts.logger.debug?.({ stream: this.stream }, 'reclaim: no group yet')
      else opts.logger.warn({ stream: this.stream, err: errField(err) }, 'reclaim failed; trying again next interval')
    }
  }

  async stopIntake (): Promise<void> {
    this.#closing = true
    this.#readerIdle = false
    this.#signalClosing()
    // Completions already written on the reader are answered before its next read blocks.
    if (this.#lastOnReader !== undefined) await withTimeout(this.#lastOnReader, 1000).catch(() => {})
    // Dropping the socket is the only way to break a blocking XREADGROUP at once (BullMQ does the same).
    // Entries it was delivering stay pending under this consumer and are reclaimed.
    this.#reader.disconnect()
    // The loop may be waiting on the command connection (re-creating the group) while Redis is down.
    if (this.#loop !== undefined) await withTimeout(this.#loop, 1000).catch(() => {})
    // The reclaim timer keeps renewing in-flight entries until finish().
  }

  async finish (drained: boolean): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#reclaimTimer)
    if (this.#reclaiming !== undefined) await withTimeout(this.#reclaiming, 1000).catch(() => {})
    const command = this.#ctx.command
    if (!drained || command.status !== 'ready') return
    try {
      await withTimeout((command as unknown as WithScripts).switchyardDeleteIdleConsumer(this.stream, this.group, this.consumer), 1000)
    } catch (err) {
      this.#ctx.opts.logger.debug?.({ err: errField(err) }, 'could not remove the idle consumer from its group')
    }
  }

  async close (): Promise<void> {
    await closeConnection(this.#reader)
  }
}
