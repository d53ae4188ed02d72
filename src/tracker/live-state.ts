import { toNumber } from '../protocol/coerce.ts'
import type { PluginFrame } from '../protocol/frames.ts'

/** Death alerts are at most one per character per 5 minutes (CONTRACT.md §6). */
export const DEATH_ALERT_INTERVAL_MS = 5 * 60_000
/** Sessions per character whose last `kills` is remembered. */
export const SESSIONS_KEPT = 4

/** A character idle this long gets one idle alert (CONTRACT.md §6). */
export const IDLE_ALERT_AFTER_MS = 5 * 60_000

export interface DeathEvent {
  character_name: string
  vitae: number
  at: number
}

export interface IdleEvent {
  character_name: string
  idle_since: number
  at: number
}

interface IdleTrack {
  since: number
  alerted: boolean
}

/**
 * The tracker's in-memory state and the derivations of CONTRACT.md §6 that depend on the
 * previous frame: pure (no I/O, time passed in), so it is tested without servers.
 */
export class LiveState {
  /** Last `kills` per character, per session (insertion order = age, for pruning). */
  readonly #lastKills = new Map<string, Map<string, number>>()
  readonly #currentSession = new Map<string, string>()
  readonly #vitae = new Map<string, number>()
  readonly #lastDeathAlert = new Map<string, number>()
  readonly #idle = new Map<string, IdleTrack>()
  readonly vitals = new Map<string, PluginFrame>()
  readonly cantrips = new Map<string, PluginFrame>()
  readonly nearby = new Map<string, PluginFrame>()
  readonly quests = new Map<string, Map<string, { countdown: unknown; last_updated: number }>>()
  readonly dungeonMaps = new Map<string, string>()
  readonly sharePeers = new Map<string, { last_seen: number; payload: PluginFrame }>()

  /**
   * Kill accounting: the positive difference from the last `kills` of the same
   * (character, session); a new session starts from its first value with no delta.
   */
  killDelta(character: string, sessionId: string | null, kills: number | null): number {
    if (sessionId !== null) this.#currentSession.set(character, sessionId)
    if (kills === null) return 0
    let sessions = this.#lastKills.get(character)
    if (sessions === undefined) {
      sessions = new Map()
      this.#lastKills.set(character, sessions)
    }
    const session = sessionId ?? ''
    const last = sessions.get(session)
    sessions.set(session, kills)
    // Every login is a new session: keep the few recent ones (overlapping reconnects), not all.
    if (last === undefined && sessions.size > SESSIONS_KEPT) sessions.delete(sessions.keys().next().value!)
    if (last === undefined) return 0
    const delta = kills - last
    return Math.max(delta, 0)
  }

  /** The session of the character's latest telemetry (rares are counted per session). */
  sessionOf(character: string): string | null {
    return this.#currentSession.get(character) ?? null
  }

  /** Vitae going from 0 to above 0 is a death; at most one event per character per 5 minutes. */
  observeVitals(frame: PluginFrame, now: number): DeathEvent | undefined {
    const character = frame.character_name as string
    this.vitals.set(character, frame)
    const vitae = toNumber(frame.vitae)
    if (vitae === null) return undefined
    const previous = this.#vitae.get(character)
    this.#vitae.set(character, vitae)
    if (previous !== 0 || vitae <= 0) return undefined
    const last = this.#lastDeathAlert.get(character)
    if (last !== undefined && now - last < DEATH_ALERT_INTERVAL_MS) return undefined
    this.#lastDeathAlert.set(character, now)
    return { character_name: character, vitae, at: now }
  }

  /** Idle continuously for 5 minutes raises one event; leaving idle re-arms it. */
  observeVtState(character: string, vtState: string | null, now: number): IdleEvent | undefined {
    if (vtState === null || vtState.toLowerCase() !== 'idle') {
      this.#idle.delete(character)
      return undefined
    }
    let track = this.#idle.get(character)
    if (track === undefined) {
      track = { since: now, alerted: false }
      this.#idle.set(character, track)
    }
    if (track.alerted || now - track.since < IDLE_ALERT_AFTER_MS) return undefined
    track.alerted = true
    return { character_name: character, idle_since: track.since, at: now }
  }

  observeQuest(frame: PluginFrame, now: number): void {
    const character = frame.character_name as string
    const name = typeof frame.quest_name === 'string' ? frame.quest_name : String(frame.quest_name)
    let quests = this.quests.get(character)
    if (quests === undefined) {
      quests = new Map()
      this.quests.set(character, quests)
    }
    quests.set(name, { countdown: frame.countdown, last_updated: now })
  }

  observeShare(frame: PluginFrame, now: number): void {
    if (typeof frame.character_name === 'string') {
      this.sharePeers.set(frame.character_name, { last_seen: now, payload: frame })
    }
  }
}
