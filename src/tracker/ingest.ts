import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import type { BusFrame, FrameMeta } from '../bus/frame-batch.ts'
import type { NatsBus } from '../bus/nats-bus.ts'
import type { Persistence } from '../db/persistence.ts'
import type { WriteOp } from '../db/write-ops.ts'
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
  /**
   * The bus between instances (`NATS_URL`): accepted frames are published to it instead of
   * queued on the writer, and frames other instances accepted come back through
   * {@link Ingest.applyRemote}. Undefined: one process, as before.
   */
  bus?: NatsBus
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

  /** The writer's enqueue, bound once (not per frame). */
  readonly #enqueue: (op: WriteOp) => void

  constructor(options: IngestOptions) {
    super()
    this.#o = options
    this.#enqueue = (op) => void options.writer?.enqueue(op)
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
        const name = character
        this.#o.bus?.claim(name, (command) => this.#deliverCommand(name, command))
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
      if (character !== undefined && this.plugins.get(character) === ws) {
        this.plugins.delete(character)
        this.#o.bus?.release(character)
      }
      log.debug({ character, code }, 'plugin disconnected')
    })
  }

  /** Handles one accepted frame: per-type state and persistence, then the broadcast. */
  handle(frame: DecodedFrame, text: string, receivedAt: Micros, from: WebSocket | undefined): void {
    const { counters, writer, bus } = this.#o
    counters.frames_accepted += 1
    bumpBounded(counters.by_type, frame.wireType)
    const meta = this.#observe(frame, text, receivedAt, true)
    if (bus !== undefined) bus.publish(frame.wireType, { receivedAt, text, meta })
    else if (writer !== undefined) writeOps(frame, meta, this.#enqueue)
    if (frame.kind === 'full_inventory') this.#o.inventory.forward('full', text)
    else if (frame.kind === 'inventory_delta') this.#o.inventory.forward('delta', text)
    if (frame.kind === 'share') this.#relayShare(text, from)
    this.#broadcast(frame, text)
  }

  /**
   * Frames another instance accepted (the bus, issue 11): the same state and broadcast as a
   * local frame, and share relays to this instance's plugins, but no persistence, forwarding or
   * alerts: those happen once, where the frame was accepted. `replay` (frames from before this
   * instance started): the state only.
   */
  applyRemote(frames: readonly BusFrame[], replay = false): void {
    for (const f of frames) {
      const decoded = decodeFrame(f.text, f.receivedAt as Micros)
      if (!decoded.ok) {
        // Accepted by its origin, refused here: the instances run different versions.
        bump(this.#o.counters.bad_by_reason, `bus_${decoded.reason}`)
        continue
      }
      this.#observe(decoded.frame, f.text, f.receivedAt as Micros, false)
      // Replayed at start-up: state only; it is history, not news for browsers or plugins.
      if (replay) continue
      if (decoded.frame.kind === 'share') this.#relayShare(f.text, undefined)
      this.#broadcast(decoded.frame, f.text)
    }
  }

  /**
   * Per-type state (CONTRACT.md §6), and what the writer needs derived from it. Detections are
   * raised only for frames accepted here (`local`); elsewhere they only keep the state in step.
   */
  #observe(frame: DecodedFrame, text: string, receivedAt: Micros, local: boolean): FrameMeta {
    const { counters, live } = this.#o
    const nowMs = receivedAt / 1000
    switch (frame.kind) {
      case 'telemetry': {
        const row = frame.record
        const killsDelta = live.killDelta(frame.character, row.session_id, row.kills)
        const idle = live.observeVtState(frame.character, row.vt_state, nowMs)
        if (idle !== undefined && local) {
          counters.idles_detected += 1
          this.emit('idle', idle)
        }
        return { killsDelta, session: null }
      }
      case 'vitals': {
        const death = live.observeVitals(frame.character, frame.vitae, kept(frame, text), nowMs)
        if (death !== undefined && local) {
          counters.deaths_detected += 1
          this.emit('death', death)
        }
        break
      }
      case 'equipment_cantrip_state':
        live.cantrips.set(frame.character, kept(frame, text))
        break
      case 'nearby_objects':
        live.nearby.set(frame.character, kept(frame, text))
        break
      case 'quest':
        live.observeQuest(frame.character, frame.questName, frame.countdown, text.length, frame.at)
        break
      case 'rare':
        return { killsDelta: null, session: live.sessionOf(frame.character) }
      case 'combat_stats':
        return { killsDelta: null, session: frame.sessionId ?? live.sessionOf(frame.character) }
      case 'dungeon_map':
        if (frame.landblock !== null) live.dungeonMaps.set(frame.landblock, text)
        break
      case 'share':
        if (frame.character !== undefined) live.observeShare(frame.character, kept(frame, text), nowMs)
        break
      case 'other':
        if (local) counters.unknown_types += 1
    }
    return NO_META
  }

  #broadcast(frame: DecodedFrame, text: string): void {
    const { hub } = this.#o
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

  /**
   * Sends a browser's command to the character's plugin, here or (with a bus) on whichever
   * instance holds it; false when no plugin is registered anywhere.
   */
  async sendCommand(player: string, text: string): Promise<boolean> {
    if (this.#deliverCommand(player, text)) return true
    return this.#o.bus === undefined ? false : this.#o.bus.command(player, text)
  }

  /** Delivers a command to a plugin socket held here; false when there is none open. */
  #deliverCommand(player: string, text: string): boolean {
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

const NO_META: FrameMeta = { killsDelta: null, session: null }

/**
 * Hands `write` the database writes one accepted frame makes, given what its origin derived
 * (`meta`): the same whether the origin writes it (one process) or the bus's writer does (issue 11).
 */
export function writeOps(frame: DecodedFrame, meta: FrameMeta, write: (op: WriteOp) => void): void {
  switch (frame.kind) {
    case 'telemetry':
      write({ kind: 'telemetry', row: frame.record })
      if (meta.killsDelta !== null && meta.killsDelta > 0)
        write({ kind: 'kills', character: frame.character, delta: meta.killsDelta })
      return
    case 'character_stats':
      write({ kind: 'character_stats', row: frame.row })
      return
    case 'portal':
      write({ kind: 'portal', row: frame.row })
      return
    case 'spawn':
      write({ kind: 'spawn', row: frame.row })
      return
    case 'rare':
      write({ kind: 'rare', row: frame.row, sessionId: meta.session })
      return
    case 'combat_stats':
      if (meta.session !== null)
        write({
          kind: 'combat',
          character: frame.character,
          sessionId: meta.session,
          stats: frame.stats,
          at: frame.at,
        })
  }
}

/** A memory-only frame as kept per character, sized by its text for the cache bounds. */
const kept = (frame: DecodedFrame, text: string): KeptFrame => ({ frame: frame.raw, bytes: text.length })
