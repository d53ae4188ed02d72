import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import * as wsModule from 'ws'
import WebSocket from 'ws'

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
  /** Bytes a browser may have waiting before it counts as slow. */
  softLimitBytes?: number
  /** How long a browser may stay over the soft limit before it is cut off. */
  graceMs?: number
  /** Bytes past which a browser is cut off at once, bounding the memory a stalled one can hold. */
  hardLimitBytes?: number
  /**
   * How long frames gather before they are written: a few milliseconds of latency buys one
   * writev per browser per window instead of one per event-loop turn (bench/README.md).
   */
  coalesceMs?: number
}

/** Close code for a browser that cannot keep up (RFC 6455 §7.4.1: 1013 Try Again Later). */
export const CLOSE_SLOW_CONSUMER = 1013

interface BrowserClient {
  ws: WebSocket
  socket: Duplex
  /** Original frame types this browser subscribed to; null = everything. */
  filter: Set<string> | null
  pending: Buffer[]
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
 */
export class BrowserHub {
  readonly #clients = new Set<BrowserClient>()
  readonly #dirty = new Set<BrowserClient>()
  readonly #log: Logger
  readonly #softLimit: number
  readonly #hardLimit: number
  readonly #graceMs: number
  readonly #coalesceMs: number
  #flushScheduled = false
  readonly stats: HubStats = { browsers: 0, messagesSent: 0, slowDisconnects: 0 }

  constructor(options: BrowserHubOptions) {
    this.#log = options.logger.child({ component: 'browser-hub' })
    this.#softLimit = options.softLimitBytes ?? 1 << 20
    this.#hardLimit = options.hardLimitBytes ?? 8 << 20
    this.#graceMs = options.graceMs ?? 2_000
    this.#coalesceMs = options.coalesceMs ?? 2
  }

  /** Adds an accepted browser socket; `socket` is the raw connection ws was upgraded on. */
  add(ws: WebSocket, socket: Duplex): BrowserClient {
    const client: BrowserClient = { ws, socket, filter: null, pending: [], overSince: undefined }
    this.#clients.add(client)
    this.stats.browsers = this.#clients.size
    ws.once('close', () => {
      this.#clients.delete(client)
      this.#dirty.delete(client)
      client.pending = []
      this.stats.browsers = this.#clients.size
    })
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
      client.pending.push(frame)
      this.#dirty.add(client)
    }
    if (!this.#flushScheduled && this.#dirty.size > 0) {
      this.#flushScheduled = true
      if (this.#coalesceMs > 0) setTimeout(this.#flush, this.#coalesceMs)
      else setImmediate(this.#flush)
    }
  }

  /** Sends one message to one browser, outside the broadcast path (replies to its requests). */
  reply(client: BrowserClient, message: unknown): void {
    if (client.ws.readyState === WebSocket.OPEN) client.ws.send(JSON.stringify(message))
  }

  get size(): number {
    return this.#clients.size
  }

  /** Closes every browser socket. */
  closeAll(code = 1001): void {
    for (const client of this.#clients) client.ws.close(code)
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false
    const now = Date.now()
    for (const client of this.#dirty) {
      const { ws, socket, pending } = client
      client.pending = []
      if (ws.readyState !== WebSocket.OPEN) continue
      // Written beside ws's own sender, which is safe because ours never queues: without
      // per-message deflate it writes each message synchronously, so frames cannot interleave.
      socket.cork()
      for (const frame of pending) socket.write(frame)
      socket.uncork()
      this.stats.messagesSent += pending.length
      this.#checkBackpressure(client, now)
    }
    this.#dirty.clear()
  }

  #checkBackpressure(client: BrowserClient, now: number): void {
    const buffered = client.ws.bufferedAmount
    if (buffered <= this.#softLimit) {
      client.overSince = undefined
      return
    }
    client.overSince ??= now
    if (buffered > this.#hardLimit || now - client.overSince > this.#graceMs) this.#cutOff(client, buffered)
  }

  #cutOff(client: BrowserClient, buffered: number): void {
    this.stats.slowDisconnects += 1
    this.#log.warn(
      { buffered, overMs: Date.now() - (client.overSince ?? Date.now()) },
      'slow browser cut off',
    )
    this.#clients.delete(client)
    this.#dirty.delete(client)
    this.stats.browsers = this.#clients.size
    client.pending = []
    client.ws.close(CLOSE_SLOW_CONSUMER, 'slow consumer')
    // The close frame queues behind the backlog a stalled reader never drains: don't wait for it.
    setTimeout(() => client.ws.terminate(), 1_000).unref()
  }
}

export type { BrowserClient }
