import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { type KV, Kvm } from '@nats-io/kv'
import {
  AckPolicy,
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream'
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import type { Logger } from 'pino'
import { coerceError, ERR, OverlordError } from '../protocol/errors.ts'
import { within } from '../util/within.ts'
import { type BusFrame, decodeBatch, encodeBatch, entryBytes } from './frame-batch.ts'

export interface NatsBusOptions {
  /** `nats://host:port` (several, comma-separated, for a cluster). */
  url: string
  /** Subject prefix, stream and bucket names: instances with the same name share one fleet. */
  name?: string
  logger: Logger
  /** How long frames of one type gather before one publish (ms). */
  windowMs?: number
  /** How long the stream keeps frames: a starting instance rebuilds its live state from them. */
  maxAgeMs?: number
  /** Frames awaiting the stream's acknowledgement past which new frames are written locally instead. */
  maxInFlightFrames?: number
  /** How long start-up waits for the server before failing. */
  connectTimeoutMs?: number
  /** Writer lease: renewed every `leaseMs / 4`, lost after `leaseMs` without renewal. */
  leaseMs?: number
}

/** What a bus delivers to its instance. */
export interface BusHandlers {
  /** Frames another instance accepted, in its order, for state and browsers. */
  /**
   * `replay`: frames the stream held before this instance started, applied to its state only (no
   * browser saw them arrive here, and no plugin must get an old share relayed again).
   */
  remote(frames: BusFrame[], replay: boolean): void
  /**
   * Frames the bus could not store (server away past the retry window, or over the in-flight
   * bound): the origin writes them itself, so nothing accepted is lost.
   */
  unstored(frames: BusFrame[]): void
}

/** The writer lane a leader feeds: queue every frame's ops, then resolve once they are committed. */
export interface BusWriter {
  /**
   * Queues one message's frames, in order. `redelivered`: a writer before this one may have
   * committed them and died before acknowledging (a promise then, while that is checked).
   */
  enqueue(frames: readonly BusFrame[], redelivered: boolean): undefined | Promise<void>
  flush(): Promise<void>
}

export interface BusStats {
  instance: string
  connected: boolean
  reconnects: number
  /** Frames handed to the bus, and the messages they went out in. */
  published_frames: number
  published_messages: number
  /** Frames whose publish the stream has not acknowledged yet. */
  publish_in_flight: number
  publish_retries: number
  /** Frames the bus could not take (see {@link BusHandlers.unstored}), written by the origin. */
  unstored_frames: number
  remote_frames: number
  remote_messages: number
  remote_bad_messages: number
  /** Frames from before this instance started, applied to its state at start-up. */
  replayed_frames: number
  /** Stream sequences the follower never saw (aged out before it got there): state may lag. */
  remote_gaps: number
  writer_leader: boolean
  writer_frames: number
  writer_messages: number
  writer_redelivered: number
  /** Messages delivered again after a server restart lost our acknowledgements: not written twice. */
  writer_duplicates_skipped: number
  commands_forwarded: number
  commands_delivered: number
}

/** Subject-safe token for a frame type: the plugin names it, so anything odd is `_other`. */
const typeToken = (type: string): string => (/^[A-Za-z0-9_-]{1,64}$/.test(type) ? type : '_other')
/** A character name as one subject token (base64url has no `.`, `*`, `>` or spaces). */
const characterToken = (name: string): string => Buffer.from(name, 'utf8').toString('base64url') || '_'

const MAX_PUBLISH_BYTES = 512 * 1024
/** JetStream's duplicate window: a publish retried with the same id inside it is stored once. */
const DUPLICATE_WINDOW_MS = 120_000
/** How long a publish is retried (well inside the duplicate window) before its frames go local. */
const RETRY_FOR_MS = 90_000
const COMMAND_TIMEOUT_MS = 2_000
const WRITER_BATCH = 256
/** How long a writer's unacknowledged message waits before it goes to another (kept alive while it works). */
const ACK_WAIT_MS = 10_000
/** Committed stream sequences remembered to skip re-deliveries after a server restart. */
const COMMITTED_KEPT = 100_000

type Settings = Required<Omit<NatsBusOptions, 'logger'>> & { logger: Logger }

interface Pending {
  /** The frames' type as the plugin named it; its subject token is made once, when sent. */
  type: string
  frames: BusFrame[]
  bytes: number
}

/**
 * The bus between tracker instances (issue 11), on NATS JetStream:
 *
 * - every accepted plugin frame is published once, batched per type per window, to
 *   `<name>.frame.<type>.<instance>` and stored in the stream `<NAME>_FRAMES`;
 * - every instance follows the stream with an ordered consumer (state, browsers), skipping its own
 *   frames, which it handled as it accepted them, and resuming where it left off after a reconnect;
 * - one instance at a time holds the writer lease (a KV key with a TTL) and writes the stream to
 *   the database through the durable consumer `writer`, acknowledging after commit: a writer
 *   that dies leaves its unacknowledged frames to the next one;
 * - browser commands are requests on `<name>.cmd.<character>`, answered by the instance holding
 *   that plugin's socket.
 */
export class NatsBus {
  readonly instance: string
  readonly stats: BusStats
  readonly #o: Settings
  readonly #nc: NatsConnection
  readonly #js: JetStreamClient
  readonly #stream: string
  readonly #log: Logger
  #handlers: BusHandlers | undefined
  /** The message being gathered: frames of one type, in acceptance order. */
  #open: Pending | undefined
  #windowTimer: NodeJS.Timeout | undefined
  #msgSeq = 0
  #closed = false
  #follower: ConsumerMessages | undefined
  #followerDone: Promise<void> | undefined
  /** The last stream sequence the follower applied (or skipped as its own). */
  #lastSeq = 0
  /** The stream's last sequence when this instance started: up to it, frames are replayed. */
  #replayUntil = 0
  #onCaughtUp: () => void = () => {}
  readonly #claims = new Map<string, Subscription>()
  #leaseTimer: NodeJS.Timeout | undefined
  #kv: KV | undefined
  #leaseRevision = 0
  #writerMessages: ConsumerMessages | undefined
  /**
   * Stream sequences this instance has written and acknowledged, the most recent
   * {@link COMMITTED_KEPT}: a set, not a high-water mark, because a dead writer's messages come
   * back after newer ones have been written.
   */
  readonly #committed = new Set<number>()
  readonly #committedOrder: number[] = []
  #writerDone: Promise<void> | undefined
  /** Messages published and not yet acknowledged by the stream, each with how it is settled. */
  readonly #inFlight = new Map<Pending, (stored: boolean, err?: unknown) => void>()

  private constructor(o: Settings, nc: NatsConnection, instance: string) {
    this.#o = o
    this.#nc = nc
    this.#js = jetstream(nc)
    this.#stream = `${o.name.toUpperCase()}_FRAMES`
    this.instance = instance
    this.#log = o.logger.child({ component: 'bus', instance })
    this.stats = {
      instance,
      connected: true,
      reconnects: 0,
      published_frames: 0,
      published_messages: 0,
      publish_in_flight: 0,
      publish_retries: 0,
      unstored_frames: 0,
      remote_frames: 0,
      remote_messages: 0,
      remote_bad_messages: 0,
      replayed_frames: 0,
      remote_gaps: 0,
      writer_leader: false,
      writer_frames: 0,
      writer_messages: 0,
      writer_redelivered: 0,
      writer_duplicates_skipped: 0,
      commands_forwarded: 0,
      commands_delivered: 0,
    }
  }

  /**
   * Connects and sets up the stream, or fails with one clear error: a tracker told to share a
   * fleet over a bus it cannot reach must not start alone.
   */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const o = {
      name: 'overlord',
      windowMs: 1,
      maxAgeMs: 15 * 60_000,
      maxInFlightFrames: 200_000,
      connectTimeoutMs: 5_000,
      leaseMs: 4_000,
      ...options,
    }
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(o.name))
      throw new OverlordError(
        ERR.CONFIG,
        `bad NATS_NAME ${JSON.stringify(o.name)}: letters, digits, - and _ only`,
      )
    const instance = `${hostname()
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 24)}-${process.pid}-${randomBytes(3).toString('hex')}`
    let nc: NatsConnection
    try {
      nc = await connect({
        servers: o.url.split(',').map((s) => s.trim()),
        name: `overlord-ts ${instance}`,
        timeout: o.connectTimeoutMs,
        // Once up, keep trying for ever: an instance outlives a NATS restart.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      })
    } catch (err) {
      throw new OverlordError(
        ERR.BUS_UNAVAILABLE,
        `NATS at ${o.url} is not reachable (${coerceError(err).message})`,
        {
          cause: err,
        },
      )
    }
    const bus = new NatsBus(o, nc, instance)
    try {
      await bus.#ensureStream()
    } catch (err) {
      await nc.close().catch(() => {})
      throw new OverlordError(
        ERR.BUS_UNAVAILABLE,
        `NATS at ${o.url} has no usable JetStream (start nats-server with -js): ${coerceError(err).message}`,
        { cause: err },
      )
    }
    bus.#watchStatus()
    return bus
  }

  async #ensureStream(): Promise<void> {
    const jsm = await jetstreamManager(this.#nc)
    const config = {
      name: this.#stream,
      subjects: [`${this.#o.name}.frame.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: this.#o.maxAgeMs * 1e6,
      max_bytes: 1024 ** 3,
      duplicate_window: DUPLICATE_WINDOW_MS * 1e6,
    }
    try {
      await jsm.streams.info(this.#stream)
      await jsm.streams.update(this.#stream, config)
    } catch (err) {
      if (!/not found/i.test(coerceError(err).message)) throw err
      await jsm.streams.add(config)
    }
    await jsm.consumers
      .add(this.#stream, {
        durable_name: 'writer',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: ACK_WAIT_MS * 1e6,
        max_ack_pending: 20_000,
      })
      .catch(async (err) => {
        // Another instance made it first.
        await jsm.consumers.info(this.#stream, 'writer').catch(() => {
          throw err
        })
      })
    this.#kv = await new Kvm(this.#nc).create(`${this.#o.name}_lease`, { ttl: this.#o.leaseMs, history: 1 })
  }

  #watchStatus(): void {
    void (async () => {
      for await (const s of this.#nc.status()) {
        if (s.type === 'disconnect') {
          this.stats.connected = false
          this.#log.warn('NATS connection lost; frames wait in the client and are retried')
        } else if (s.type === 'reconnect') {
          this.stats.connected = true
          this.stats.reconnects += 1
          this.#log.info('NATS connection back')
          if (this.#handlers !== undefined)
            this.#startFollower().catch((err: unknown) =>
              this.#log.error({ err: coerceError(err) }, 'could not resume following the stream'),
            )
        }
      }
    })().catch(() => {})
  }

  /**
   * Starts following the stream: frames other instances accepted go to `handlers.remote`.
   * Replays what the stream still holds first, so a new instance starts with the fleet's state.
   */
  async start(handlers: BusHandlers, catchUpMs = 30_000): Promise<void> {
    this.#handlers = handlers
    const jsm = await jetstreamManager(this.#nc)
    this.#replayUntil = (await jsm.streams.info(this.#stream)).state.last_seq
    let caughtUp: () => void = () => {}
    const done = new Promise<void>((resolve) => {
      caughtUp = resolve
    })
    this.#onCaughtUp = caughtUp
    await this.#startFollower()
    if (this.#replayUntil === 0) caughtUp()
    // Serve once the fleet's state is rebuilt (bounded: a huge stream is finished in the background).
    await within(done, catchUpMs)
    this.#log.info({ replayed: this.stats.replayed_frames, upTo: this.#replayUntil }, 'bus followed')
  }

  /**
   * (Re)starts the ordered consumer just after the last stream sequence applied: after a
   * reconnect it resumes there itself rather than trusting the old consumer to have survived.
   */
  async #startFollower(): Promise<void> {
    const previous = this.#follower
    const consumer = await this.#js.consumers.get(
      this.#stream,
      this.#lastSeq === 0
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#lastSeq + 1 },
    )
    if (this.#closed) return
    previous?.stop()
    const messages = await consumer.consume({ max_messages: 1024 })
    this.#follower = messages
    this.#followerDone = this.#follow(messages)
  }

  async #follow(messages: ConsumerMessages): Promise<void> {
    const ownSuffix = `.${this.instance}`
    for await (const m of messages) {
      if (this.#follower !== messages) break
      // Delivered again across a restart of the consumer: applied already.
      if (m.seq <= this.#lastSeq) continue
      // The stream holds only frames, so its sequence has no holes but those its limits made.
      if (this.#lastSeq !== 0 && m.seq !== this.#lastSeq + 1) this.stats.remote_gaps += 1
      this.#lastSeq = m.seq
      if (m.seq >= this.#replayUntil) this.#onCaughtUp()
      if (m.subject.endsWith(ownSuffix)) continue
      let frames: BusFrame[]
      try {
        frames = decodeBatch(m.data)
      } catch (err) {
        this.stats.remote_bad_messages += 1
        this.#log.warn({ err, subject: m.subject }, 'bus message undecodable, skipped')
        continue
      }
      const replay = m.seq <= this.#replayUntil
      if (replay) this.stats.replayed_frames += frames.length
      else {
        this.stats.remote_messages += 1
        this.stats.remote_frames += frames.length
      }
      this.#handlers!.remote(frames, replay)
    }
  }

  /**
   * Queues one accepted frame for the next publish. Frames of one type that follow each other
   * within the window go out as one message; a frame of another type closes it, so every
   * instance sees an origin's frames in the order it accepted them.
   */
  publish(type: string, frame: BusFrame): void {
    const bytes = entryBytes(frame)
    if (
      bytes > MAX_PUBLISH_BYTES ||
      this.stats.publish_in_flight >= this.#o.maxInFlightFrames ||
      this.#closed
    ) {
      this.stats.unstored_frames += 1
      this.#handlers?.unstored([frame])
      return
    }
    let pending = this.#open
    if (pending !== undefined && (pending.type !== type || pending.bytes + bytes > MAX_PUBLISH_BYTES)) {
      this.#send(pending)
      pending = undefined
    }
    if (pending === undefined) {
      pending = { type, frames: [], bytes: 0 }
      this.#open = pending
    }
    pending.frames.push(frame)
    pending.bytes += bytes
    this.stats.publish_in_flight += 1
    this.#windowTimer ??= setTimeout(this.#flushWindow, this.#o.windowMs)
  }

  readonly #flushWindow = (): void => {
    this.#windowTimer = undefined
    if (this.#open !== undefined) this.#send(this.#open)
  }

  #send(pending: Pending): void {
    if (this.#open === pending) this.#open = undefined
    const id = `${this.instance}-${++this.#msgSeq}`
    const subject = `${this.#o.name}.frame.${typeToken(pending.type)}.${this.instance}`
    const body = encodeBatch(pending.frames)
    this.stats.published_messages += 1
    this.stats.published_frames += pending.frames.length
    const started = Date.now()
    /** Settles a message once: stored, or handed back to the origin to write. */
    const settle = (stored: boolean, err?: unknown): void => {
      if (!this.#inFlight.delete(pending)) return
      this.stats.publish_in_flight -= pending.frames.length
      if (stored) return
      this.stats.unstored_frames += pending.frames.length
      this.#log.error(
        { err: err === undefined ? undefined : coerceError(err), frames: pending.frames.length },
        'bus could not store frames: the origin writes them itself',
      )
      this.#handlers?.unstored(pending.frames)
    }
    const attempt = (): void => {
      if (!this.#inFlight.has(pending)) return
      this.#js
        .publish(subject, body, { msgID: id, timeout: 5_000 })
        .then(() => settle(true))
        .catch((err: unknown) => {
          // Retried with the same id: the stream stores it once even if the first try did land.
          if (!this.#closed && Date.now() - started < RETRY_FOR_MS) {
            this.stats.publish_retries += 1
            this.#log.warn(
              { err: coerceError(err), frames: pending.frames.length },
              'bus publish failed, retrying',
            )
            setTimeout(attempt, 500)
            return
          }
          settle(false, err)
        })
    }
    this.#inFlight.set(pending, settle)
    attempt()
  }

  /**
   * Announces that this instance holds `character`'s plugin socket: commands for it from any
   * instance come to `deliver`, which answers whether the socket took it.
   */
  claim(character: string, deliver: (text: string) => boolean): void {
    if (this.#claims.has(character) || this.#closed) return
    const sub = this.#nc.subscribe(`${this.#o.name}.cmd.${characterToken(character)}`, {
      callback: (err, msg) => {
        if (err !== null) return
        if (deliver(msg.string())) {
          this.stats.commands_delivered += 1
          msg.respond('ok')
        }
      },
    })
    this.#claims.set(character, sub)
  }

  release(character: string): void {
    this.#claims.get(character)?.unsubscribe()
    this.#claims.delete(character)
  }

  /** Sends a browser's command to whichever instance holds the plugin; false when none does. */
  async command(character: string, text: string): Promise<boolean> {
    this.stats.commands_forwarded += 1
    try {
      const reply = await this.#nc.request(`${this.#o.name}.cmd.${characterToken(character)}`, text, {
        timeout: COMMAND_TIMEOUT_MS,
      })
      return reply.string() === 'ok'
    } catch {
      // No responder (nobody holds the plugin) or no answer in time.
      return false
    }
  }

  /**
   * Competes for the writer lease; while this instance holds it, writes the stream to the
   * database through `writer`, acknowledging each message once its frames are committed.
   */
  startWriter(writer: BusWriter): void {
    const tick = (): void => {
      if (this.#closed) return
      void this.#renewLease(writer).finally(() => {
        if (!this.#closed) this.#leaseTimer = setTimeout(tick, this.#o.leaseMs / 4)
      })
    }
    tick()
  }

  async #renewLease(writer: BusWriter): Promise<void> {
    const kv = this.#kv!
    try {
      if (this.stats.writer_leader) {
        this.#leaseRevision = await kv.update('writer', this.instance, this.#leaseRevision)
      } else {
        this.#leaseRevision = await kv.create('writer', this.instance)
        this.stats.writer_leader = true
        this.#log.info('took the writer lease: this instance writes the stream to the database')
        const consumer = await this.#js.consumers.get(this.#stream, 'writer')
        this.#writerDone = this.#write(consumer, writer)
      }
    } catch (err) {
      if (this.stats.writer_leader) {
        this.#log.warn({ err: coerceError(err) }, 'lost the writer lease')
        this.stats.writer_leader = false
        this.#writerMessages?.stop()
      }
    }
  }

  #noteCommitted(seq: number): void {
    if (this.#committed.has(seq)) return
    this.#committed.add(seq)
    this.#committedOrder.push(seq)
    if (this.#committedOrder.length > COMMITTED_KEPT * 2) {
      for (const old of this.#committedOrder.splice(0, COMMITTED_KEPT)) this.#committed.delete(old)
    }
  }

  async #write(consumer: Consumer, writer: BusWriter): Promise<void> {
    const messages = await consumer.consume({ max_messages: WRITER_BATCH })
    this.#writerMessages = messages
    let held: JsMsg[] = []
    let flushing: Promise<void> | undefined
    const cycle = async (): Promise<void> => {
      while (held.length > 0) {
        const batch = held
        held = []
        // A long flush (database away) must not hand these frames to another writer meanwhile.
        const keepAlive = setInterval(() => {
          for (const m of batch) m.working()
        }, ACK_WAIT_MS / 3)
        try {
          await writer.flush()
        } finally {
          clearInterval(keepAlive)
        }
        for (const m of batch) {
          m.ack()
          this.#noteCommitted(m.seq)
        }
      }
    }
    for await (const m of messages) {
      if (!this.stats.writer_leader) break
      // A server restarted before it saved our acknowledgements delivers them again as new.
      if (this.#committed.has(m.seq)) {
        this.stats.writer_duplicates_skipped += 1
        m.ack()
        continue
      }
      if (m.info.redelivered) this.stats.writer_redelivered += 1
      let frames: BusFrame[]
      try {
        frames = decodeBatch(m.data)
      } catch (err) {
        this.#log.error({ err, subject: m.subject }, 'bus message undecodable: not written')
        m.term()
        continue
      }
      const checking = writer.enqueue(frames, m.info.redelivered)
      if (checking !== undefined) {
        try {
          await checking
        } catch (err) {
          // The database stayed away through the check: deliver it again later, write nothing now.
          this.#log.warn({ err: coerceError(err) }, 'redelivered frames not checked; asked for again')
          m.nak(5_000)
          continue
        }
      }
      this.stats.writer_messages += 1
      this.stats.writer_frames += frames.length
      held.push(m)
      flushing ??= cycle().finally(() => {
        flushing = undefined
      })
    }
    await flushing
  }

  /** Publishes what is gathered and waits (bounded) for the stream to acknowledge it. */
  async drain(timeoutMs = 5_000): Promise<void> {
    clearTimeout(this.#windowTimer)
    this.#flushWindow()
    const until = Date.now() + timeoutMs
    while (this.stats.publish_in_flight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
  }

  /**
   * Publishes what is gathered and waits (bounded) for the stream to take it; what it has not
   * taken by then the origin writes itself. As writer, commits and acknowledges what it took.
   * Every step is bounded: a bus that is away must not hold a shutdown.
   */
  async close(): Promise<void> {
    await this.drain()
    this.#closed = true
    for (const settle of [...this.#inFlight.values()]) settle(false, new Error('shutting down'))
    clearTimeout(this.#leaseTimer)
    this.#follower?.stop()
    this.#writerMessages?.stop()
    if (this.#writerDone !== undefined)
      await within(
        this.#writerDone.catch(() => {}),
        10_000,
      )
    if (this.#followerDone !== undefined)
      await within(
        this.#followerDone.catch(() => {}),
        1_000,
      )
    if (this.stats.writer_leader && this.#kv !== undefined)
      await within(
        this.#kv.delete('writer').catch(() => {}),
        1_000,
      )
    this.stats.writer_leader = false
    for (const sub of this.#claims.values()) sub.unsubscribe()
    this.#claims.clear()
    await within(
      this.#nc.drain().catch(() => {}),
      2_000,
    )
    if (!this.#nc.isClosed()) await this.#nc.close().catch(() => {})
  }
}
