import { toInteger, toNumber, toText } from './coerce.ts'
import { type Micros, parseInstant } from './time.ts'

/** A plugin frame after the envelope checks of CONTRACT.md §2: a JSON object with a `type`. */
export type PluginFrame = Record<string, unknown> & { type: string }

/** Why a frame was refused; the values are the metric labels. */
export type BadFrameReason = 'not_json' | 'not_object' | 'no_type' | 'no_character'

export type ParseResult = { ok: true; frame: PluginFrame } | { ok: false; reason: BadFrameReason }

/** The plugin event types of CONTRACT.md §2 with handling of their own (besides `share_*`). */
export const CONTRACT_EVENT_TYPES = [
  'telemetry',
  'vitals',
  'character_stats',
  'full_inventory',
  'inventory_delta',
  'equipment_cantrip_state',
  'portal',
  'spawn',
  'chat',
  'quest',
  'rare',
  'nearby_objects',
  'combat_stats',
  'dungeon_map',
] as const

/** Event types that reach the database (CONTRACT.md §8). */
export const PERSISTED_TYPES = new Set([
  'telemetry',
  'spawn',
  'rare',
  'portal',
  'character_stats',
  'combat_stats',
])

/** Types whose handling is keyed by character, so a frame without `character_name` is useless. */
const NEEDS_CHARACTER = new Set([...PERSISTED_TYPES, 'vitals', 'quest'])

/** Checks the envelope of one text frame without looking at type-specific fields. */
export function parseFrame(text: string): ParseResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'not_json' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not_object' }
  }
  const frame = value as Record<string, unknown>
  if (typeof frame.type !== 'string' || frame.type === '') return { ok: false, reason: 'no_type' }
  if (NEEDS_CHARACTER.has(frame.type) && !isName(frame.character_name)) {
    return { ok: false, reason: 'no_character' }
  }
  return { ok: true, frame: frame as PluginFrame }
}

const isName = (v: unknown): v is string => typeof v === 'string' && v !== ''

/** `full_inventory` has a legacy alias (CONTRACT.md §2). */
export const canonicalType = (type: string): string => (type === 'inventory' ? 'full_inventory' : type)

/** A telemetry frame coerced to the `telemetry_events` columns (CONTRACT.md §2, §8). */
export interface TelemetryRecord {
  character_name: string
  char_tag: string | null
  session_id: string | null
  timestamp: Micros
  received_at: Micros
  ew: number | null
  ns: number | null
  z: number | null
  kills: number | null
  kills_per_hour: number | null
  onlinetime: string | null
  deaths: number | null
  total_deaths: number | null
  rares_found: number | null
  prismatic_taper_count: number | null
  vt_state: string | null
  mem_mb: number | null
  cpu_pct: number | null
  mem_handles: number | null
  latency_ms: number | null
}

/** Telemetry columns in table order, shared by the writer and the readers. */
export const TELEMETRY_COLUMNS = [
  'character_name',
  'char_tag',
  'session_id',
  'timestamp',
  'received_at',
  'ew',
  'ns',
  'z',
  'kills',
  'kills_per_hour',
  'onlinetime',
  'deaths',
  'total_deaths',
  'rares_found',
  'prismatic_taper_count',
  'vt_state',
  'mem_mb',
  'cpu_pct',
  'mem_handles',
  'latency_ms',
] as const satisfies readonly (keyof TelemetryRecord)[]

/** Coerces a telemetry frame; `receivedAt` is the server's receive time, the fallback for a bad client time. */
export function toTelemetryRecord(frame: PluginFrame, receivedAt: Micros): TelemetryRecord {
  return {
    character_name: frame.character_name as string,
    char_tag: toText(frame.char_tag),
    session_id: toText(frame.session_id),
    timestamp: parseInstant(frame.timestamp) ?? receivedAt,
    received_at: receivedAt,
    ew: toNumber(frame.ew),
    ns: toNumber(frame.ns),
    z: toNumber(frame.z),
    kills: toInteger(frame.kills),
    kills_per_hour: toNumber(frame.kills_per_hour),
    onlinetime: toText(frame.onlinetime),
    deaths: toInteger(frame.deaths),
    total_deaths: toInteger(frame.total_deaths),
    rares_found: toInteger(frame.rares_found),
    prismatic_taper_count: toInteger(frame.prismatic_taper_count),
    vt_state: toText(frame.vt_state),
    mem_mb: toNumber(frame.mem_mb),
    cpu_pct: toNumber(frame.cpu_pct),
    mem_handles: toInteger(frame.mem_handles),
    latency_ms: toNumber(frame.latency_ms),
  }
}

/** The frame's client timestamp, or the receive time when it has none. */
export const frameTime = (frame: PluginFrame, receivedAt: Micros): Micros =>
  parseInstant(frame.timestamp) ?? receivedAt
