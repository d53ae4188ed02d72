import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import { coerceError, ERR, OverlordError } from '../../protocol/errors.ts'
import { exceedsDepth, PRESCAN_BYTES, textExceedsDepth } from '../../protocol/json-bounds.ts'
import { within } from '../../util/within.ts'
import { own } from './identity.ts'
import type { Blind, LiveFeedTarget, Received, Side, SocketHealth, SocketSnapshot } from './types.ts'

/**
 * The `/ws/live` sockets (I/O): each opened with the same options, its messages decoded and bounded
 * once, and the four that stay open across windows.
 */

/** Nesting the harness compares; deeper messages are counted and dropped, before anything recurses. */
const MAX_DEPTH = 64

/** A firehose socket receives everything; a subscribed one only the types it asked for. */
export type Role = 'firehose' | 'subscribed'

/** `http://host:port[/prefix]` → `ws://host:port[/prefix]/ws/live` (https → wss). */
export function liveUrl(base: string): string {
  let u: URL
  try {
    u = new URL(base)
  } catch (err) {
    throw new OverlordError(ERR.CMP_BACKEND, `not a URL: ${base}`, { cause: err })
  }
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new OverlordError(ERR.CMP_BACKEND, `not an http(s) or ws(s) URL: ${base}`)
  }
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/ws/live`
  u.search = ''
  u.hash = ''
  return u.toString()
}

/** The headers of an upgrade, asked for afresh when they are a function. */
export const headersOf = async (h: LiveFeedTarget['headers']): Promise<Record<string, string>> =>
  typeof h === 'function' ? await h() : (h ?? {})

/** A `/ws/live` socket: no compression, messages over `maxPayload` bytes refused. */
export const liveSocket = (
  url: string,
  headers: Record<string, string>,
  o: { maxPayload: number; handshakeTimeoutMs: number },
): WebSocket =>
  new WebSocket(url, {
    headers,
    perMessageDeflate: false,
    maxPayload: o.maxPayload,
    handshakeTimeout: o.handshakeTimeoutMs,
  })

type Parsed = { msg: Record<string, unknown> } | { fault: 'unparsable' | 'tooDeep' }

/** One message decoded, its nesting bounded before anything recurses into it. */
export function parseMessage(data: WebSocket.RawData): Parsed {
  const text = Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Buffer.from(data as ArrayBuffer).toString('utf8')
  if (text.length >= PRESCAN_BYTES && textExceedsDepth(text, MAX_DEPTH)) return { fault: 'tooDeep' }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { fault: 'unparsable' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { fault: 'unparsable' }
  if (exceedsDepth(value, MAX_DEPTH)) return { fault: 'tooDeep' }
  return { msg: value as Record<string, unknown> }
}

/** A landblock of our own, asked for to learn when the messages sent before it have been handled. */
export const syncLandblock = (): string => `overlord-ts sync ${randomBytes(4).toString('hex')}`

/** Whether `msg` is the dungeon map answered for `landblock` (a probe's, or a sync's). */
export const isDungeonMapFor = (msg: Record<string, unknown>, landblock: string): boolean =>
  own(msg, 'type') === 'dungeon_map' && own(msg, 'landblock') === landblock

/**
 * Subscribes `ws` to `types`, then asks for the map of `sync`, a landblock no dungeon has: messages
 * are handled in order, so once that answer is back the subscribe is in force.
 */
export function subscribeThenSync(ws: WebSocket, types: readonly string[], sync: string): void {
  ws.send(JSON.stringify({ type: 'subscribe', message_types: types }))
  ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: sync }))
}

/** One {@link FeedSocket}: which side and role, where, and its limits. */
export interface FeedSocketOptions {
  side: Side
  role: Role
  url: string
  headers: LiveFeedTarget['headers']
  subscribeTypes: readonly string[]
  maxMessages: number
  maxPayload: number
  syncTimeoutMs: number
  connectTimeoutMs: number
  retry: { initialMs: number; maxMs: number }
  log: Logger
}

/** What a socket hands over at a window's cut. */
export interface Taken {
  snapshot: SocketSnapshot
  health: SocketHealth
  /** Why it is down now, if it is, and since when. */
  down: { since: number; reason: string } | undefined
  /** Reconnect gaps that ended inside the window. */
  gaps: { from: number; to: number }[]
}

/**
 * One `/ws/live` socket kept open: a firehose, or one subscribed to `subscribeTypes` (its messages
 * count from the moment the subscribe is confirmed). Reconnects with backoff; every time it could
 * not see messages is kept as a {@link Blind} so the comparison does not call them missing.
 */
export class FeedSocket {
  readonly ready: Promise<void>
  readonly #o: FeedSocketOptions
  #markReady: () => void = () => {}
  #ws: WebSocket | undefined
  #items: Received[] = []
  #lastAt: number | null = null
  #blind: Blind[] = []
  #downSince: number | undefined = Number.NEGATIVE_INFINITY
  #downReason: 'start' | 'down' = 'start'
  #overflowSince: number | undefined
  #live = false
  #closing = false
  #timer: NodeJS.Timeout | undefined
  #retryMs: number
  #lastError = 'never connected'
  #counts = { overflow: 0, reconnects: 0, unparsable: 0, tooDeep: 0, faults: 0 }

  constructor(options: FeedSocketOptions) {
    this.#o = options
    this.#retryMs = options.retry.initialMs
    this.ready = new Promise((resolve) => {
      this.#markReady = resolve
    })
    this.#connect()
  }

  get kept(): number {
    return this.#items.length
  }

  get lastAt(): number | null {
    return this.#lastAt
  }

  get live(): boolean {
    return this.#live
  }

  #connect(): void {
    if (this.#closing) return
    this.#open().catch((err: unknown) => {
      this.#fault(err)
      this.#retry()
    })
  }

  async #open(): Promise<void> {
    const headers = await headersOf(this.#o.headers)
    if (this.#closing) return
    const ws = liveSocket(this.#o.url, headers, {
      maxPayload: this.#o.maxPayload,
      handshakeTimeoutMs: this.#o.connectTimeoutMs,
    })
    this.#ws = ws
    const sync = syncLandblock()
    let syncTimer: NodeJS.Timeout | undefined
    let error: string | undefined
    // Socket callbacks have no caller to catch for them: each catches, counts and carries on.
    ws.on('open', () => {
      try {
        if (this.#o.role === 'firehose') return this.#goLive()
        subscribeThenSync(ws, this.#o.subscribeTypes, sync)
        syncTimer = setTimeout(() => {
          if (this.#ws !== ws || this.#live) return
          this.#o.log.warn('subscribe not confirmed in time; counting from now')
          this.#goLive()
        }, this.#o.syncTimeoutMs)
      } catch (err) {
        this.#fault(err)
      }
    })
    ws.on('message', (data) => {
      try {
        this.#receive(ws, data, sync)
      } catch (err) {
        this.#fault(err)
      }
    })
    ws.on('error', (err) => {
      error = err.message
    })
    ws.on('close', (code, reason) => {
      clearTimeout(syncTimer)
      try {
        this.#onClose(ws, error ?? `closed ${code}${reason.length > 0 ? ` ${reason.toString()}` : ''}`)
      } catch (err) {
        this.#fault(err)
      }
    })
  }

  #receive(ws: WebSocket, data: WebSocket.RawData, sync: string): void {
    if (ws !== this.#ws) return
    const at = Date.now()
    const parsed = parseMessage(data)
    if ('fault' in parsed) {
      this.#counts[parsed.fault] += 1
      return
    }
    const { msg } = parsed
    if (isDungeonMapFor(msg, sync)) {
      if (!this.#live) this.#goLive()
      return
    }
    if (!this.#live) return
    this.#lastAt = at
    if (this.#items.length >= this.#o.maxMessages) {
      this.#counts.overflow += 1
      this.#overflowSince ??= at
      return
    }
    this.#items.push({ at, msg })
  }

  #goLive(): void {
    const now = Date.now()
    this.#live = true
    this.#retryMs = this.#o.retry.initialMs
    if (this.#downSince !== undefined) {
      this.#blind.push({ from: this.#downSince, to: now, reason: this.#downReason })
      if (this.#downReason === 'down') this.#counts.reconnects += 1
      this.#downSince = undefined
    }
    this.#o.log.debug('receiving')
    this.#markReady()
  }

  #onClose(ws: WebSocket, why: string): void {
    if (ws !== this.#ws) return
    this.#ws = undefined
    const wasLive = this.#live
    this.#live = false
    if (this.#closing) return
    this.#lastError = why
    if (this.#downSince === undefined) {
      this.#downSince = Date.now()
      this.#downReason = 'down'
    }
    if (wasLive) this.#o.log.warn({ why }, 'socket closed; reconnecting')
    else this.#o.log.debug({ why }, 'connect failed; retrying')
    this.#retry()
  }

  #retry(): void {
    if (this.#closing) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#connect(), this.#retryMs)
    this.#retryMs = Math.min(this.#retryMs * 2, this.#o.retry.maxMs)
  }

  #fault(err: unknown): void {
    this.#counts.faults += 1
    this.#lastError = coerceError(err).message
    this.#o.log.debug({ err: coerceError(err) }, 'socket fault')
  }

  /** Hands over what arrived since the last cut, with the blind spots the comparison needs. */
  take(cut: number, windowStart: number, keepBlindFrom: number): Taken {
    const items = this.#items
    this.#items = []
    if (this.#overflowSince !== undefined) {
      this.#blind.push({ from: this.#overflowSince, to: cut, reason: 'overflow' })
      this.#overflowSince = undefined
    }
    const blind = [...this.#blind]
    if (this.#downSince !== undefined)
      blind.push({ from: this.#downSince, to: Infinity, reason: this.#downReason })
    let downMs = 0
    const gaps: Taken['gaps'] = []
    for (const b of blind) {
      if (b.reason === 'overflow') continue
      const overlap = Math.min(b.to, cut) - Math.max(b.from, windowStart)
      if (overlap > 0) downMs += overlap
      if (b.reason === 'down' && b.to > windowStart && b.to <= cut) gaps.push({ from: b.from, to: b.to })
    }
    this.#blind = this.#blind.filter((b) => b.to >= keepBlindFrom)
    const health: SocketHealth = {
      up: this.#live,
      kept: items.length,
      ...this.#counts,
      downSeconds: downMs / 1000,
    }
    this.#counts = { overflow: 0, reconnects: 0, unparsable: 0, tooDeep: 0, faults: 0 }
    const down =
      this.#downSince === undefined ? undefined : { since: this.#downSince, reason: this.#lastError }
    return { snapshot: { items, blind }, health, down, gaps }
  }

  async close(): Promise<void> {
    this.#closing = true
    clearTimeout(this.#timer)
    const ws = this.#ws
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return
    const closed = new Promise((resolve) => ws.once('close', resolve))
    ws.close(1000)
    await within(closed, 1_000)
    ws.terminate()
  }
}
