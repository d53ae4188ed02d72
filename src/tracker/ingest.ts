import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import type { Persistence } from '../db/persistence.ts'
import { toInteger, toNumber, toText } from '../protocol/coerce.ts'
import {
  CONTRACT_EVENT_TYPES,
  canonicalType,
  frameTime,
  type PluginFrame,
  parseFrame,
  toTelemetryRecord,
} from '../protocol/frames.ts'
import { type Clock, msToMicros } from '../protocol/time.ts'
import type { BrowserHub } from './browser-hub.ts'
import type { InventoryForwarder } from './inventory-forwarder.ts'
import type { DeathEvent, IdleEvent, LiveState } from './live-state.ts'
import { bump, bumpBounded, type IngestCounters } from './metrics.ts'

export interface IngestOptions {
  clock: Clock
  logger: Logger
  live: LiveState
  hub: BrowserHub
  counters: IngestCounters
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

/** Types handled beyond broadcast; anything else is counted as unknown (the protocol is additive). */
const KNOWN_TYPES: ReadonlySet<string> = new Set(CONTRACT_EVENT_TYPES)

const BAD_FRAME_LOG_INTERVAL_MS = 10_000

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
    const { counters } = this.#o
    const log = this.#o.logger.child({ component: 'ingest', conn })
    counters.plugin_connections += 1
    let character: string | undefined
    let badSinceLog = 0
    let lastBadLog = 0
    ws.on('message', (data: Buffer, isBinary) => {
      counters.frames_received += 1
      const text = isBinary ? '' : data.toString('utf8')
      const parsed = parseFrame(text)
      if (!parsed.ok) {
        counters.frames_bad += 1
        bump(counters.bad_by_reason, parsed.reason)
        badSinceLog += 1
        const now = Date.now()
        if (now - lastBadLog >= BAD_FRAME_LOG_INTERVAL_MS) {
          log.warn(
            { reason: parsed.reason, dropped: badSinceLog, bytes: data.length, character },
            'bad frame dropped',
          )
          lastBadLog = now
          badSinceLog = 0
        }
        return
      }
      const frame = parsed.frame
      if (
        character === undefined &&
        typeof frame.character_name === 'string' &&
        frame.character_name !== ''
      ) {
        character = frame.character_name
        this.plugins.set(character, ws)
        log.debug({ character }, 'plugin registered')
      }
      this.handle(frame, text, ws)
    })
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

  /** Handles one accepted frame: per-type state and persistence, then the broadcast. */
  handle(frame: PluginFrame, text: string, from: WebSocket | undefined): void {
    const { counters, live, writer, clock, hub } = this.#o
    const type = canonicalType(frame.type)
    counters.frames_accepted += 1
    bumpBounded(counters.by_type, frame.type)
    const nowMs = clock.now()
    const receivedAt = msToMicros(nowMs)
    const character = frame.character_name as string

    switch (type) {
      case 'telemetry': {
        const row = toTelemetryRecord(frame, receivedAt)
        writer?.enqueue({ kind: 'telemetry', row })
        const delta = live.killDelta(character, row.session_id, row.kills)
        if (delta > 0) writer?.enqueue({ kind: 'kills', character, delta })
        const idle = live.observeVtState(character, row.vt_state, nowMs)
        if (idle !== undefined) {
          counters.idles_detected += 1
          this.emit('idle', idle)
        }
        break
      }
      case 'vitals': {
        const death = live.observeVitals(frame, nowMs)
        if (death !== undefined) {
          counters.deaths_detected += 1
          this.emit('death', death)
        }
        break
      }
      case 'character_stats': {
        const { type: _type, ...statsData } = frame
        writer?.enqueue({
          kind: 'character_stats',
          row: {
            character_name: character,
            timestamp: frameTime(frame, receivedAt),
            level: toInteger(frame.level),
            total_xp: toInteger(frame.total_xp),
            unassigned_xp: toInteger(frame.unassigned_xp),
            luminance_earned: toInteger(frame.luminance_earned),
            luminance_total: toInteger(frame.luminance_total),
            deaths: toInteger(frame.deaths),
            stats_data: statsData,
          },
        })
        break
      }
      case 'full_inventory':
        this.#o.inventory.forward('full', text)
        break
      case 'inventory_delta':
        this.#o.inventory.forward('delta', text)
        break
      case 'equipment_cantrip_state':
        live.cantrips.set(character, frame)
        break
      case 'nearby_objects':
        live.nearby.set(character, frame)
        break
      case 'quest':
        live.observeQuest(frame, nowMs)
        break
      case 'portal': {
        const ns = toNumber(frame.ns)
        const ew = toNumber(frame.ew)
        if (ns === null || ew === null) break
        writer?.enqueue({
          kind: 'portal',
          row: {
            portal_name: toText(frame.portal_name) ?? '',
            ns,
            ew,
            z: toNumber(frame.z),
            discovered_at: frameTime(frame, receivedAt),
            discovered_by: character,
          },
        })
        break
      }
      case 'spawn':
        writer?.enqueue({
          kind: 'spawn',
          row: { character_name: character, mob: toText(frame.mob), ...place(frame, receivedAt) },
        })
        break
      case 'rare':
        writer?.enqueue({
          kind: 'rare',
          row: { character_name: character, name: toText(frame.name), ...place(frame, receivedAt) },
          sessionId: live.sessionOf(character),
        })
        break
      case 'combat_stats': {
        const sessionId = toText(frame.session_id) ?? live.sessionOf(character)
        if (sessionId !== null) {
          writer?.enqueue({
            kind: 'combat',
            character,
            sessionId,
            stats: frame.stats,
            at: frameTime(frame, receivedAt),
          })
        }
        break
      }
      case 'dungeon_map': {
        const landblock = toText(frame.landblock)
        if (landblock !== null) live.dungeonMaps.set(landblock, text)
        break
      }
      case 'chat':
        break
      default:
        if (type.startsWith('share_')) {
          live.observeShare(frame, nowMs)
          this.#relayShare(text, from)
        } else if (!KNOWN_TYPES.has(type)) {
          counters.unknown_types += 1
        }
    }

    if (hub.size === 0) return
    // Telemetry goes to browsers typeless (CONTRACT.md §3): the dashboard takes players from /live.
    if (type === 'telemetry') {
      const { type: _type, ...typeless } = frame
      hub.broadcast('telemetry', Buffer.from(JSON.stringify(typeless)))
    } else {
      hub.broadcast(frame.type, Buffer.from(text))
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

function place(frame: PluginFrame, receivedAt: number) {
  return {
    timestamp: frameTime(frame, receivedAt),
    ew: toNumber(frame.ew),
    ns: toNumber(frame.ns),
    z: toNumber(frame.z),
  }
}
