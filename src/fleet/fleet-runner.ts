import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import { coerceError } from '../protocol/errors.ts'
import type { FleetEvent, FleetModel } from './fleet-model.ts'

export interface FleetConnectionsOptions {
  /** Any plugin endpoint: a tracker's, the inline tee's, nginx's `/ws/position`. */
  url: string
  /** Sent as `X-Plugin-Secret`, as the plugin does. */
  secret?: string
  logger: Logger
}

/** What the simulated plugins did. */
export interface FleetStats {
  connects: number
  refused: number
  closes: number
  frames_sent: number
  frames_dropped: number
  by_type: Record<string, number>
}

interface Plugin {
  ws: WebSocket
  pending: string[]
  closeWhenOpen: boolean
}

/**
 * The plugin side of the simulator: one WebSocket per online character, opened on `connect`, closed
 * on `disconnect`, frames sent in order (held while the socket opens). A refused or dropped socket
 * drops that character's frames until its next `connect`, as a real plugin would lose them.
 */
export class FleetConnections {
  readonly stats: FleetStats = {
    connects: 0,
    refused: 0,
    closes: 0,
    frames_sent: 0,
    frames_dropped: 0,
    by_type: {},
  }
  readonly #o: FleetConnectionsOptions
  readonly #plugins = new Map<string, Plugin>()
  /** Sockets told to close whose close handshake has not finished. */
  readonly #closing = new Set<WebSocket>()

  constructor(options: FleetConnectionsOptions) {
    this.#o = options
  }

  apply(event: FleetEvent): void {
    if (event.kind === 'connect') this.#connect(event.character)
    else if (event.kind === 'disconnect') this.#disconnect(event.character)
    else this.#send(event.character, event.type, event.data)
  }

  /** Resolves once every socket is open (or gone) and its send buffer is empty. */
  async drain(): Promise<void> {
    for (;;) {
      let busy = false
      for (const p of this.#plugins.values()) {
        if (p.ws.readyState === WebSocket.CONNECTING || p.ws.bufferedAmount > 0) busy = true
      }
      if (this.#closing.size > 0) busy = true
      if (!busy) return
      await sleep(2)
    }
  }

  /** Closes every plugin socket normally and waits for the closes. */
  async closeAll(): Promise<void> {
    const closing = [...this.#plugins.values()].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.ws.readyState === WebSocket.CLOSED) return resolve()
          p.ws.once('close', () => resolve())
          if (p.ws.readyState === WebSocket.OPEN) p.ws.close(1000)
          else p.ws.terminate()
        }),
    )
    this.#plugins.clear()
    await Promise.all(closing)
  }

  #connect(character: string): void {
    const previous = this.#plugins.get(character)
    if (previous !== undefined) previous.ws.terminate()
    const ws = new WebSocket(this.#o.url, {
      headers: this.#o.secret === undefined ? {} : { 'X-Plugin-Secret': this.#o.secret },
      perMessageDeflate: false,
    })
    const plugin: Plugin = { ws, pending: [], closeWhenOpen: false }
    this.#plugins.set(character, plugin)
    const log = this.#o.logger.child({ character })
    ws.on('open', () => {
      this.stats.connects += 1
      for (const data of plugin.pending.splice(0)) this.#write(plugin, data)
      if (plugin.closeWhenOpen) ws.close(1000)
    })
    ws.on('unexpected-response', (_req, res) => {
      this.stats.refused += 1
      log.warn({ status: res.statusCode }, 'plugin handshake refused')
      res.resume()
      ws.terminate()
    })
    ws.on('error', (err) => log.debug({ err: coerceError(err) }, 'plugin socket error'))
    ws.on('close', (code) => {
      this.#closing.delete(ws)
      this.stats.closes += 1
      if (code === 1008) {
        this.stats.refused += 1
        log.warn({ code }, 'plugin refused')
      }
      this.stats.frames_dropped += plugin.pending.length
      plugin.pending = []
      if (this.#plugins.get(character) === plugin) this.#plugins.delete(character)
    })
  }

  #disconnect(character: string): void {
    const plugin = this.#plugins.get(character)
    if (plugin === undefined) return
    this.#plugins.delete(character)
    this.#closing.add(plugin.ws)
    if (plugin.ws.readyState === WebSocket.OPEN) plugin.ws.close(1000)
    else plugin.closeWhenOpen = true
  }

  #send(character: string, type: string, data: string): void {
    this.stats.by_type[type] = (this.stats.by_type[type] ?? 0) + 1
    const plugin = this.#plugins.get(character)
    if (plugin === undefined) {
      this.stats.frames_dropped += 1
      return
    }
    if (plugin.ws.readyState === WebSocket.OPEN) this.#write(plugin, data)
    else if (plugin.ws.readyState === WebSocket.CONNECTING) plugin.pending.push(data)
    else this.stats.frames_dropped += 1
  }

  #write(plugin: Plugin, data: string): void {
    plugin.ws.send(data)
    this.stats.frames_sent += 1
  }
}

export interface RunFleetOptions {
  model: FleetModel
  connections: FleetConnections
  /** Simulated ms per real ms (default 1). */
  speed?: number
  /** Simulated duration in ms. */
  durationMs: number
  /** Where simulated time starts (the model's `startMs`). */
  startMs: number
  tickMs?: number
  /** Called about once per real second with the simulated time reached. */
  onProgress?: (simulatedMs: number, stats: FleetStats) => void
  signal?: AbortSignal
}

/** Plays the fleet in real time (scaled by `speed`) against the connections' endpoint. */
export async function runFleet(o: RunFleetOptions): Promise<FleetStats> {
  const speed = o.speed ?? 1
  const realStart = performance.now()
  const end = o.startMs + o.durationMs
  let lastProgress = realStart
  for (;;) {
    const realNow = performance.now()
    const simNow = Math.min(end, o.startMs + (realNow - realStart) * speed)
    for (const event of o.model.advance(simNow)) o.connections.apply(event)
    if (o.onProgress !== undefined && realNow - lastProgress >= 1000) {
      lastProgress = realNow
      o.onProgress(simNow - o.startMs, o.connections.stats)
    }
    if (simNow >= end || o.signal?.aborted === true) break
    await sleep(o.tickMs ?? 20)
  }
  await o.connections.drain()
  await o.connections.closeAll()
  return o.connections.stats
}
