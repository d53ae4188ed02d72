import { LRUCache } from 'lru-cache'
import type { RawFrame } from '../protocol/decode-frame.ts'
import type { Micros } from '../protocol/time.ts'

/** Death alerts are at most one per character per 5 minutes (CONTRACT.md §6). */
export const DEATH_ALERT_INTERVAL_MS = 5 * 60_000
/** Sessions per character whose last `kills` is remembered. */
export const SESSIONS_KEPT = 4

/**
 * Bounds on memory-only state (chosen): the fleet is about 70 characters, so these only bite
 * when a plugin invents names, landblocks or quests, and then the least recently seen go first.
 */
export const MAX_CHARACTERS = 10_000
export const MAX_QUESTS_PER_CHARACTER = 256
export const MAX_DUNGEON_MAPS = 4_096
/** Bytes of frame text one per-character frame cache (vitals, cantrips, radar, peers, maps) holds. */
export const MAX_CACHED_BYTES = 32 * 1024 * 1024

/**
 * A per-character cache, least recently seen evicted first; given `bytesOf`, bounded in the
 * bytes of frame text its values hold too.
 */
function characterCache<V extends {}>(bytesOf?: (value: V) => number): LRUCache<string, V> {
  return bytesOf === undefined
    ? new LRUCache<string, V>({ max: MAX_CHARACTERS })
    : new LRUCache<string, V>({
        max: MAX_CHARACTERS,
        maxSize: MAX_CACHED_BYTES,
        sizeCalculation: (v) => Math.max(1, bytesOf(v)),
      })
}

const keptBytes = (kept: KeptFrame): number => kept.bytes

/** A memory-only frame kept as received, with its size in bytes for the cache bound. */
export interface KeptFrame {
  frame: RawFrame
  bytes: number
}

/** One character's quests: latest countdown per quest name, and the frame bytes they hold. */
export interface CharacterQuests {
  /** `last_updated`: the quest frame's own instant (CONTRACT.md §4), in microseconds. */
  byName: Map<string, { countdown: unknown; last_updated: Micros; bytes: number }>
  bytes: number
}

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
  readonly #lastKills = characterCache<Map<string, number>>()
  readonly #currentSession = characterCache<string>()
  readonly #vitae = characterCache<number>()
  readonly #lastDeathAlert = characterCache<number>()
  readonly #idle = characterCache<IdleTrack>()
  readonly vitals = characterCache(keptBytes)
  readonly cantrips = characterCache(keptBytes)
  readonly nearby = characterCache(keptBytes)
  /** Latest per (character, quest), bounded in characters and in the bytes of their frames. */
  readonly quests = characterCache<CharacterQuests>((q) => q.bytes)
  /** The cached `dungeon_map` frame text per landblock, for browsers' `request_dungeon_map`. */
  readonly dungeonMaps = new LRUCache<string, string>({
    max: MAX_DUNGEON_MAPS,
    maxSize: MAX_CACHED_BYTES,
    sizeCalculation: (text) => Math.max(1, text.length),
  })
  readonly sharePeers = characterCache<{ last_seen: number; payload: KeptFrame }>((p) => p.payload.bytes)

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
  observeVitals(
    character: string,
    vitae: number | null,
    kept: KeptFrame,
    now: number,
  ): DeathEvent | undefined {
    this.vitals.set(character, kept)
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

  observeQuest(character: string, questName: string, countdown: unknown, bytes: number, at: Micros): void {
    const entry = this.quests.get(character) ?? { byName: new Map(), bytes: 0 }
    const previous = entry.byName.get(questName)
    if (previous !== undefined) {
      entry.bytes -= previous.bytes
      entry.byName.delete(questName)
    } else if (entry.byName.size >= MAX_QUESTS_PER_CHARACTER) {
      const [oldest, kept] = entry.byName.entries().next().value!
      entry.bytes -= kept.bytes
      entry.byName.delete(oldest)
    }
    entry.byName.set(questName, { countdown, last_updated: at, bytes })
    entry.bytes += bytes
    this.quests.set(character, entry)
  }

  observeShare(character: string, kept: KeptFrame, now: number): void {
    this.sharePeers.set(character, { last_seen: now, payload: kept })
  }
}
