import { sendableClose } from '../util/close-codes.ts'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import { coerceError } from '../protocol/errors.ts'
import type { MirrorCounters } from './mirror-counters.ts'

/** How one mirrored plugin connection reaches the shadow's `/ws/position`. */
export interface ShadowLinkOptions {
  /** The shadow's plugin endpoint, e.g. `ws://127.0.0.1:8766/ws/position`. */
  url: string
  /** Sent as `X-Plugin-Secret`; never put in the URL, so it cannot end up in a log line. */
  secret: string | undefined
  /** Frames held while the shadow socket connects or is down; past it frames are dropped. */
  maxQueue: number
  /** Past this many bytes waiting in the shadow socket's send buffer, frames are dropped (slow shadow). */
  maxBufferedBytes: number
  /** First reconnect delay, doubled per failure up to `maxReconnectDelayMs`. */
  reconnectDelayMs: number
  maxReconnectDelayMs: number
  counters: MirrorCounters
  logger: Logger
}

const CLOSE_NORMAL = 1000
const HEALTHY_LIFETIME_MS = 2_000

/**
 * One plugin connection as the shadow sees it: a WebSocket opened with the shadow's secret, frames
 * sent in order, and the plugin's disconnect mirrored. Every method returns at once and never throws
 * (CONTRACT.md §10): a shadow that is down, slow or refusing only costs dropped, counted frames.
 *
 * Every frame given to {@link ShadowLink.send} is counted exactly once as forwarded or dropped, and
 * is `pending` until then (the invariant in `mirror-counters.ts`): queued, or written to the socket
 * and waiting for its send callback.
 */
export class ShadowLink {
  readonly #o: ShadowLinkOptions
  #ws: WebSocket | undefined
  #queue: string[] = []
  #delayMs: number
  #retryTimer: NodeJS.Timeout | undefined
  /** Real time before which no new dial is made, so a refusing shadow is not hammered. */
  #retryAfter = 0
  #closing: number | undefined
  #done = false

  constructor(options: ShadowLinkOptions) {
    this.#o = options
    this.#delayMs = options.reconnectDelayMs
  }

  /** Opens the shadow socket now (a mirrored plugin connect). */
  connect(): void {
    if (this.#ws !== undefined || this.#retryTimer !== undefined || this.#done) return
    const wait = this.#retryAfter - Date.now()
    if (wait <= 0) {
      this.#dial()
      return
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      if (this.#ws === undefined && !this.#done) this.#dial()
    }, wait)
    this.#retryTimer.unref()
  }

  /** Sends one frame, or queues it while the shadow socket connects; drops it past the bounds. */
  send(data: string): void {
    const counters = this.#o.counters
    if (this.#done || this.#closing !== undefined) {
      counters.dropped_closed += 1
      return
    }
    const ws = this.#ws
    if (ws !== undefined && ws.readyState === WebSocket.OPEN) {
      // Bytes not yet in the kernel: a stopped or slow shadow has filled the kernel's buffers.
      if (ws.bufferedAmount > this.#o.maxBufferedBytes) {
        counters.dropped_slow += 1
        return
      }
      counters.pending += 1
      this.#write(ws, data)
      return
    }
    if (this.#queue.length >= this.#o.maxQueue) {
      counters.dropped_overflow += 1
      return
    }
    counters.pending += 1
    this.#queue.push(data)
    this.connect()
  }

  /** Mirrors the plugin's disconnect: flushes what is queued if the socket is up, then closes. */
  close(code = CLOSE_NORMAL): void {
    if (this.#done) return
    this.#closing = sendableClose(code)
    const ws = this.#ws
    if (ws === undefined || ws.readyState !== WebSocket.CONNECTING) this.#finish()
  }

  /**
   * Drops everything at once (tee shutdown): queued frames count as `dropped_closed` now, frames in
   * the socket's send buffer as `dropped_unflushed` when their send callbacks fail.
   */
  terminate(): void {
    this.#discardQueue()
    this.#done = true
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#ws?.terminate()
    this.#ws = undefined
  }

  #finish(): void {
    this.#done = true
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#discardQueue()
    const ws = this.#ws
    this.#ws = undefined
    if (ws === undefined) return
    try {
      if (ws.readyState === WebSocket.OPEN) ws.close(this.#closing ?? CLOSE_NORMAL)
      else ws.terminate()
    } catch (err) {
      this.#o.logger.debug({ err: coerceError(err) }, 'shadow close failed')
    }
  }

  #discardQueue(): void {
    const counters = this.#o.counters
    counters.dropped_closed += this.#queue.length
    counters.pending -= this.#queue.length
    this.#queue = []
  }

  /**
   * Writes one frame already counted as pending. The send callback says whether the socket flushed
   * it to the kernel: forwarded then, dropped as unflushed when the socket died or was terminated
   * first (Node fails every write it has not completed, the one in flight with ECANCELED).
   */
  #write(ws: WebSocket, data: string): void {
    const counters = this.#o.counters
    let settled = false
    const settle = (err: Error | null | undefined): void => {
      if (settled) return
      settled = true
      counters.pending -= 1
      if (err == null) counters.frames_forwarded += 1
      else counters.dropped_unflushed += 1
    }
    try {
      ws.send(data, settle)
    } catch (err) {
      const error = coerceError(err)
      counters.shadow_errors += 1
      this.#o.logger.debug({ err: error }, 'shadow send failed')
      settle(error)
    }
  }

  #dial(): void {
    const { counters, logger } = this.#o
    let ws: WebSocket
    try {
      ws = new WebSocket(this.#o.url, {
        headers: this.#o.secret === undefined ? {} : { 'X-Plugin-Secret': this.#o.secret },
        perMessageDeflate: false,
        handshakeTimeout: 5_000,
      })
    } catch (err) {
      counters.shadow_errors += 1
      logger.warn({ err: coerceError(err) }, 'shadow url unusable')
      this.#done = true
      this.#discardQueue()
      return
    }
    this.#ws = ws
    counters.shadow_connects += 1
    const dialedAt = Date.now()
    ws.on('open', () => {
      const queued = this.#queue
      this.#queue = []
      for (const data of queued) this.#write(ws, data)
      if (this.#closing !== undefined) this.#finish()
    })
    ws.on('unexpected-response', (_req, res) => {
      counters.shadow_refused += 1
      logger.debug({ status: res.statusCode }, 'shadow refused the handshake')
      ws.terminate()
    })
    ws.on('error', (err) => {
      counters.shadow_errors += 1
      logger.debug({ err }, 'shadow socket error')
    })
    ws.on('close', (code) => {
      if (code === 1008) counters.shadow_refused += 1
      if (this.#ws !== ws) return
      this.#ws = undefined
      if (this.#done) return
      if (this.#closing !== undefined) {
        this.#finish()
        return
      }
      // A socket that was refused or died young backs off exponentially; one that lived resets it.
      const now = Date.now()
      if (code === 1008 || now - dialedAt < HEALTHY_LIFETIME_MS) {
        this.#retryAfter = now + this.#delayMs
        this.#delayMs = Math.min(this.#delayMs * 2, this.#o.maxReconnectDelayMs)
      } else {
        this.#delayMs = this.#o.reconnectDelayMs
        this.#retryAfter = now
      }
      if (this.#queue.length > 0) this.connect()
    })
  }
}
