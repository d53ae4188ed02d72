import type { Logger } from 'pino'
import { type MirrorCounters, newMirrorCounters } from './mirror-counters.ts'
import { ShadowLink } from './shadow-link.ts'

/** Where and how a tee mirrors plugin connections into the shadow. */
export interface ShadowMirrorOptions {
  /** The shadow's `/ws/position` URL (ws:// or wss://). */
  url: string
  /** The shadow's plugin secret, sent as `X-Plugin-Secret`. */
  secret: string | undefined
  logger: Logger
  /** Per connection: frames held while the shadow connects or is down (default 1000). */
  maxQueue?: number
  /** Per connection: send-buffer bound before frames are dropped as slow (default 1 MiB). */
  maxBufferedBytes?: number
  /** At most this many mirrored connections at once (default 5000); beyond, frames are dropped. */
  maxLinks?: number
  /** A connection with no frame for this long is closed (lost disconnects; default 10 min). */
  idleMs?: number
  reconnectDelayMs?: number
  maxReconnectDelayMs?: number
}

interface Entry {
  link: ShadowLink
  lastSeen: number
}

/**
 * The shadow side of both tee modes: one {@link ShadowLink} per mirrored plugin connection, so a
 * character's frames reach the shadow in order on a socket of their own, as if its plugin were
 * connected there. Every method is synchronous, bounded and never throws.
 */
export class ShadowMirror {
  readonly counters: MirrorCounters = newMirrorCounters()
  readonly #o: ShadowMirrorOptions
  readonly #links = new Map<string, Entry>()
  readonly #sweep: NodeJS.Timeout

  constructor(options: ShadowMirrorOptions) {
    this.#o = options
    const idleMs = options.idleMs ?? 600_000
    this.#sweep = setInterval(() => this.#closeIdle(idleMs), Math.min(idleMs, 60_000))
    this.#sweep.unref()
  }

  /** A plugin connected: open its shadow socket now. */
  open(conn: string): void {
    this.#entry(conn)?.link.connect()
  }

  /** One plugin→server frame, unchanged. */
  frame(conn: string, data: string): void {
    this.counters.frames_in += 1
    const entry = this.#entry(conn)
    if (entry === undefined) {
      this.counters.dropped_no_link += 1
      return
    }
    entry.lastSeen = Date.now()
    entry.link.send(data)
  }

  /** The plugin disconnected: mirror it with the same close code where one may be sent. */
  close(conn: string, code?: number): void {
    const entry = this.#links.get(conn)
    if (entry === undefined) return
    this.#links.delete(conn)
    this.counters.links = this.#links.size
    entry.link.close(code)
  }

  /** Closes every shadow socket at once. */
  shutdown(): void {
    clearInterval(this.#sweep)
    for (const { link } of this.#links.values()) link.terminate()
    this.#links.clear()
    this.counters.links = 0
  }

  #entry(conn: string): Entry | undefined {
    const existing = this.#links.get(conn)
    if (existing !== undefined) return existing
    if (this.#links.size >= (this.#o.maxLinks ?? 5000)) return undefined
    const link = new ShadowLink({
      url: this.#o.url,
      secret: this.#o.secret,
      maxQueue: this.#o.maxQueue ?? 1000,
      maxBufferedBytes: this.#o.maxBufferedBytes ?? 1024 * 1024,
      reconnectDelayMs: this.#o.reconnectDelayMs ?? 250,
      maxReconnectDelayMs: this.#o.maxReconnectDelayMs ?? 15_000,
      counters: this.counters,
      logger: this.#o.logger.child({ conn }),
    })
    const entry = { link, lastSeen: Date.now() }
    this.#links.set(conn, entry)
    this.counters.links = this.#links.size
    return entry
  }

  #closeIdle(idleMs: number): void {
    const cutoff = Date.now() - idleMs
    for (const [conn, entry] of this.#links) if (entry.lastSeen < cutoff) this.close(conn, 1001)
  }
}
