import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import * as wsModule from 'ws'
import WebSocket from 'ws'
import type { FaultLog } from './fault-log.ts'

/** ws's public frame encoder (`Sender.frame`, lib/sender.js), untyped in @types/ws. */
const encodeFrame = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } })
  .Sender.frame

const TEXT_FRAME = { fin: true, rsv1: false, opcode: 0x01, mask: false, readOnly: true }

/**
 * One complete, unmasked server-to-client text frame (RFC 6455 §5.2). Server frames carry no
 * mask, so the same bytes are valid on every connection: framed once, written to all.
 */
export function framed(payload: Buffer): Buffer {
  const [header, data] = encodeFrame(payload, TEXT_FRAME)
  return data === undefined ? header! : Buffer.concat([header!, data])
}

export interface BrowserHubOptions {
  logger: Logger
  /** Where a fault in the flush timer or a socket's 'drain' is counted instead of escaping. */
  faults: FaultLog
  /** Bytes a browser may have waiting (hub queue plus socket buffer) before it counts as slow. */
  softLimitBytes?: number
  /** How long a browser may stay over the soft limit before it is cut off. */
  graceMs?: number
  /** Bytes past which a browser is cut off at once, bounding the memory a stalled one can hold. */
  hardLimitBytes?: number
  /**
   * How much a browser's socket may buffer before the hub stops handing it frames and waits for
   * its 'drain'. Raised to the socket's own high-water mark when below it.
   */
  lowWaterBytes?: number
  /**
   * How long frames gather before they are written: a few milliseconds of latency buys one
   * writev per browser per window instead of one per event-loop turn (bench/README.md).
   */
  coalesceMs?: number
}

/** Close code for a browser that cannot keep up (RFC 6455 §7.4.1: 1013 Try Again Later). */
export const CLOSE_SLOW_CONSUMER = 1013

/** Close code for a server shutting down (RFC 6455 §7.4.1: 1001 Going Away). */
export const CLOSE_GOING_AWAY = 1001

/** Handed-out entries a queue keeps at its head before they are spliced away. */
const COMPACT_AFTER = 1024

interface BrowserClient {
  ws: WebSocket
  socket: Duplex
  /** Original frame types this browser subscribed to; null = everything. */
  filter: Set<string> | null
  /** Frames not yet handed to the socket: `queue[head]` onwards. */
  queue: Buffer[]
  head: number
  queuedBytes: number
  lowWater: number
  onDrain: () => void
  overSince: number | undefined
}

export interface HubStats {
  browsers: number
  messagesSent: number
  slowDisconnects: number
}

/**
 * Fan-out to browsers (CONTRACT.md §3). Each frame is serialized once by the caller and the
 * same Buffer goes to every receiver; frames for a browser are gathered for a couple of milliseconds
 * and written under one cork, so a burst costs one syscall per browser while every
 * message stays its own WebSocket message.
 *
 * Each browser's backlog waits in the hub, not in its socket: the socket is handed frames only
 * while its buffer is under the low-water mark, and more on its 'drain'. A browser that cannot
 * keep up is cut off with 1013, and that close frame waits behind at most the low-water mark,
 * so even a reader that stalled receives it once it reads again.
 */
export class BrowserHub {
  readonly #clients = new Set<BrowserClient>()
  readonly #dirty = new Set<BrowserClient>()
  readonly #log: Logger
  readonly #softLimit: number
  readonly #hardLimit: number
  readonly #graceMs: number
  readonly #lowWater: number
  readonly #coalesceMs: number
  readonly #faults: FaultLog
  #flushScheduled = false
  readonly stats: HubStats = { browsers: 0, messagesSent: 0, slowDisconnects: 0 }

  constructor(options: BrowserHubOptions) {
    this.#log = options.logger.child({ component: 'browser-hub' })
    this.#softLimit = options.softLimitBytes ?? 1 << 20
    this.#hardLimit = options.hardLimitBytes ?? 8 << 20
    this.#graceMs = options.graceMs ?? 2_000
    this.#lowWater = options.lowWaterBytes ?? 64 * 1024
    this.#coalesceMs = options.coalesceMs ?? 2
    this.#faults = options.faults
  }

  /** Adds an accepted browser socket; `socket` is the raw connection ws was upgraded on. */
  add(ws: WebSocket, socket: Duplex): BrowserClient {
    const client: BrowserClient = {
      ws,
      socket,
      filter: null,
      queue: [],
      head: 0,
      queuedBytes: 0,
      // Only a write that reaches the socket's own high-water mark promises a 'drain': stopping
      // below it could wait for one that never comes.
      lowWater: Math.max(this.#lowWater, socket.writableHighWaterMark),
      onDrain: this.#faults.guard('fanout_drain', () => {
        if (!this.#clients.has(client)) return
        this.#write(client)
        this.#checkBackpressure(client, Date.now())
      }),
      overSince: undefined,
    }
    this.#clients.add(client)
    this.stats.browsers = this.#clients.size
    socket.on('drain', client.onDrain)
    ws.once('close', () => this.#drop(client))
    return client
  }

  /** Limits a browser to the listed original frame types (its `subscribe` message). */
  subscribe(client: BrowserClient, messageTypes: readonly string[]): void {
    client.filter = new Set(messageTypes)
  }

  /** Queues one serialized frame, of original type `type`, for every browser that wants it. */
  broadcast(type: string, payload: Buffer): void {
    let frame: Buffer | undefined
    for (const client of this.#clients) {
      if (client.filter !== null && !client.filter.has(type)) continue
      frame ??= framed(payload)
      this.#enqueue(client, frame)
    }
    this.#scheduleFlush()
  }

  /**
   * Sends one message to one browser (replies to its requests): a string as it is, anything else
   * as JSON. It joins the browser's queue, so it never overtakes a frame broadcast before it (a
   * `subscribe` followed by a request is answered after everything sent under the old filter).
   */
  reply(client: BrowserClient, message: unknown): void {
    if (client.ws.readyState !== WebSocket.OPEN || !this.#clients.has(client)) return
    const text = typeof message === 'string' ? message : JSON.stringify(message)
    this.#enqueue(client, framed(Buffer.from(text)))
    this.#scheduleFlush()
  }

  #enqueue(client: BrowserClient, frame: Buffer): void {
    client.queue.push(frame)
    client.queuedBytes += frame.length
    this.#dirty.add(client)
  }

  #scheduleFlush(): void {
    if (!this.#flushScheduled && this.#dirty.size > 0) {
      this.#flushScheduled = true
      if (this.#coalesceMs > 0) setTimeout(this.#flush, this.#coalesceMs)
      else setImmediate(this.#flush)
    }
  }

  get size(): number {
    return this.#clients.size
  }

  /** Drops every browser's backlog and starts the closing handshake with `code` on each. */
  closeAll(code = CLOSE_GOING_AWAY): void {
    for (const client of [...this.#clients]) {
      this.#drop(client)
      client.ws.close(code)
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    const now = Date.now()
    for (const client of this.#dirty) {
      if (client.ws.readyState !== WebSocket.OPEN) continue
      // A timer has no caller to catch for it: one browser's fault must not stop the others'.
      try {
        this.#write(client)
        this.#checkBackpressure(client, now)
      } catch (err) {
        this.#faults.record('fanout', err)
        this.#drop(client)
        client.ws.terminate()
      }
    }
    this.#dirty.clear()
  }

  /** Hands queued frames to the socket under one cork until its buffer reaches the low-water mark. */
  #write(client: BrowserClient): void {
    const { socket, queue } = client
    let next = client.head
    if (next === queue.length || socket.writableLength >= client.lowWater) return
    // Written beside ws's own sender, which is safe because ours never queues: without
    // per-message deflate it writes each message synchronously, so frames cannot interleave.
    socket.cork()
    do {
      const frame = queue[next++]!
      client.queuedBytes -= frame.length
      socket.write(frame)
    } while (next < queue.length && socket.writableLength < client.lowWater)
    socket.uncork()
    this.stats.messagesSent += next - client.head
    if (next === queue.length) {
      queue.length = 0
      client.head = 0
    } else if (next >= COMPACT_AFTER && next * 2 >= queue.length) {
      queue.splice(0, next)
      client.head = 0
    } else {
      client.head = next
    }
  }

  #checkBackpressure(client: BrowserClient, now: number): void {
    const backlog = client.queuedBytes + client.ws.bufferedAmount
    if (backlog <= this.#softLimit) {
      client.overSince = undefined
      return
    }
    client.overSince ??= now
    if (backlog > this.#hardLimit || now - client.overSince > this.#graceMs) this.#cutOff(client, backlog)
  }

  #cutOff(client: BrowserClient, backlog: number): void {
    this.stats.slowDisconnects += 1
    this.#log.warn(
      { backlog, queued: client.queuedBytes, overMs: Date.now() - (client.overSince ?? Date.now()) },
      'slow browser cut off',
    )
    this.#drop(client)
    // The close frame waits behind at most the low-water mark; a reader that never drains it is
    // destroyed by ws once its close timeout (30 s) passes without the closing handshake.
    client.ws.close(CLOSE_SLOW_CONSUMER, 'slow consumer')
  }

  /** Forgets a browser and its backlog: its memory is released now, whatever its socket does. */
  #drop(client: BrowserClient): void {
    this.#clients.delete(client)
    this.#dirty.delete(client)
    this.stats.browsers = this.#clients.size
    client.queue = []
    client.head = 0
    client.queuedBytes = 0
    client.socket.off('drain', client.onDrain)
  }
}

export type { BrowserClient }
