import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import type { Persistence } from '../db/persistence.ts'
import { type DecodedFrame, decodeFrame } from '../protocol/decode-frame.ts'
import { LogThrottle } from '../protocol/log-throttle.ts'
import { type Clock, type Micros, msToMicros } from '../protocol/time.ts'
import type { BrowserHub } from './browser-hub.ts'
import type { InventoryForwarder } from './inventory-forwarder.ts'
import type { FaultLog } from './fault-log.ts'
import type { DeathEvent, IdleEvent, KeptFrame, LiveState } from './live-state.ts'
import { bump, bumpBounded, type IngestCounters } from './metrics.ts'

export interface IngestOptions {
  clock: Clock
  logger: Logger
  live: LiveState
  hub: BrowserHub
  counters: IngestCounters
  /** Where faults caught in socket callbacks are counted and logged. */
  faults: FaultLog
  inventory: InventoryForwarder
  /** Undefined in read-only mode: nothing is persisted. */
  writer: Persistence | undefined
  /** When false (a shadow), nothing is sent to plugins: relays and commands are counted instead. */
  pluginSideEffects: boolean
}

/** Events the tracker exposes for detections whose delivery lives elsewhere (CONTRACT.md §6). */
export interface IngestEvents {
  death: [DeathEvent]
  idle: [IdleEvent]
}

/**
 * Plugin ingest (CONTRACT.md §2): per-connection frame intake, the per-type handling and the
 * re-broadcast to browsers. Never awaits the database: persistence is queued on the writer.
 */
export class Ingest extends EventEmitter<IngestEvents> {
  readonly #o: IngestOptions
  /** The plugin socket registered per character, for command routing and share relays. */
  readonly plugins = new Map<string, WebSocket>()

  constructor(options: IngestOptions) {
    super()
    this.#o = options
  }

  /** Takes over an authenticated plugin socket. */
  attach(ws: WebSocket, conn: string): void {
    const { counters, faults } = this.#o
    const log = this.#o.logger.child({ component: 'ingest', conn })
    counters.plugin_connections += 1
    let character: string | undefined
    const badLog = new LogThrottle()
    const onMessage = (data: Buffer, isBinary: boolean): void => {
      counters.frames_received += 1
      const text = isBinary ? '' : data.toString('utf8')
      const receivedAt = msToMicros(this.#o.clock.now())
      const decoded = decodeFrame(text, receivedAt)
      if (!decoded.ok) {
        counters.frames_bad += 1
        bump(counters.bad_by_reason, decoded.reason)
        const dropped = badLog.note('bad')
        // Field names are ours (schema paths); the frame's own text is never logged.
        if (dropped > 0) {
          log.warn(
            { reason: decoded.reason, field: decoded.field, dropped, bytes: data.length, character },
            'bad frame dropped',
          )
        }
        return
      }
      const frame = decoded.frame
      if (character === undefined && frame.character !== undefined) {
        character = frame.character
        this.plugins.set(character, ws)
        log.debug({ character }, 'plugin registered')
      }
      this.handle(frame, text, receivedAt, ws)
    }
    // A handler that throws out of a ws event ends the process: each frame is isolated.
    ws.on('message', faults.guard('plugin_frame', onMessage))
    ws.on('error', (err) => {
      // ws closes the socket itself (1009 for an oversize frame); here we only count and log.
      if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        counters.frames_oversize += 1
      log.warn({ err }, 'plugin socket error')
    })
    ws.on('close', (code) => {
      counters.plugin_connections -= 1
      if (character !== undefined && this.plugins.get(character) === ws) this.plugins.delete(character)
      log.debug({ character, code }, 'plugin disconnected')
    })
  }

  /** Handles one decoded frame: per-type state and persistence, then the broadcast. */
  handle(frame: DecodedFrame, text: string, receivedAt: Micros, from: WebSocket | undefined): void {
    const { counters, live, writer, hub } = this.#o
    counters.frames_accepted += 1
    bumpBounded(counters.by_type, frame.wireType)
    const nowMs = receivedAt / 1000

    switch (frame.kind) {
      case 'telemetry': {
        const row = frame.record
        writer?.enqueue({ kind: 'telemetry', row })
        const delta = live.killDelta(frame.character, row.session_id, row.kills)
        if (delta > 0) writer?.enqueue({ kind: 'kills', character: frame.character, delta })
        const idle = live.observeVtState(frame.character, row.vt_state, nowMs)
        if (idle !== undefined) {
          counters.idles_detected += 1
          this.emit('idle', idle)
        }
        break
      }
      case 'vitals': {
        const death = live.observeVitals(frame.character, frame.vitae, kept(frame, text), nowMs)
        if (death !== undefined) {
          counters.deaths_detected += 1
          this.emit('death', death)
        }
        break
      }
      case 'character_stats':
        writer?.enqueue({ kind: 'character_stats', row: frame.row })
        break
      case 'full_inventory':
        this.#o.inventory.forward('full', text)
        break
      case 'inventory_delta':
        this.#o.inventory.forward('delta', text)
        break
      case 'equipment_cantrip_state':
        live.cantrips.set(frame.character, kept(frame, text))
        break
      case 'nearby_objects':
        live.nearby.set(frame.character, kept(frame, text))
        break
      case 'quest':
        live.observeQuest(frame.character, frame.questName, frame.countdown, text.length, frame.at)
        break
      case 'portal':
        writer?.enqueue({ kind: 'portal', row: frame.row })
        break
      case 'spawn':
        writer?.enqueue({ kind: 'spawn', row: frame.row })
        break
      case 'rare':
        writer?.enqueue({ kind: 'rare', row: frame.row, sessionId: live.sessionOf(frame.character) })
        break
      case 'combat_stats': {
        const sessionId = frame.sessionId ?? live.sessionOf(frame.character)
        if (sessionId !== null) {
          writer?.enqueue({
            kind: 'combat',
            character: frame.character,
            sessionId,
            stats: frame.stats,
            at: frame.at,
          })
        }
        break
      }
      case 'dungeon_map':
        if (frame.landblock !== null) live.dungeonMaps.set(frame.landblock, text)
        break
      case 'share':
        if (frame.character !== undefined) live.observeShare(frame.character, kept(frame, text), nowMs)
        this.#relayShare(text, from)
        break
      case 'chat':
        break
      case 'other':
        counters.unknown_types += 1
    }

    if (hub.size === 0) return
    // Telemetry goes to browsers typeless (CONTRACT.md §3): the dashboard takes players from /live.
    // Stringifying is safe here: the decoder bounded the frame's depth.
    if (frame.kind === 'telemetry') {
      const { type: _type, ...typeless } = frame.raw
      hub.broadcast('telemetry', Buffer.from(JSON.stringify(typeless)))
    } else {
      hub.broadcast(frame.wireType, Buffer.from(text))
    }
  }

  /** Sends a browser's command to the character's plugin; false when no plugin is registered. */
  sendCommand(player: string, text: string): boolean {
    const ws = this.plugins.get(player)
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false
    if (!this.#o.pluginSideEffects) {
      bump(this.#o.counters.suppressed, 'plugin_command')
      this.#o.logger.info({ component: 'ingest', player }, 'shadow: command to plugin suppressed')
      return true
    }
    ws.send(text)
    return true
  }

  #relayShare(text: string, from: WebSocket | undefined): void {
    for (const ws of this.plugins.values()) {
      if (ws === from || ws.readyState !== WebSocket.OPEN) continue
      if (!this.#o.pluginSideEffects) {
        bump(this.#o.counters.suppressed, 'share_relay')
        continue
      }
      ws.send(text)
    }
  }
}

/** A memory-only frame as kept per character, sized by its text for the cache bounds. */
const kept = (frame: DecodedFrame, text: string): KeptFrame => ({ frame: frame.raw, bytes: text.length })
