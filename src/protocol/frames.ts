import type { Micros } from './time.ts'

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

/** A `spawn_events` row (CONTRACT.md §8). */
export interface SpawnRow {
  character_name: string
  mob: string | null
  timestamp: Micros
  ew: number | null
  ns: number | null
  z: number | null
}

/** A `rare_events` row. */
export interface RareRow {
  character_name: string
  name: string | null
  timestamp: Micros
  ew: number | null
  ns: number | null
  z: number | null
}

/** A `portals` row: the first discovery of rounded coordinates. */
export interface PortalRow {
  portal_name: string
  ns: number
  ew: number
  z: number | null
  discovered_at: Micros
  discovered_by: string
}

/** A `character_stats` row: the whole frame but `type`, made storable as JSONB. */
export interface CharacterStatsRow {
  character_name: string
  timestamp: Micros
  level: number | null
  /** `bigint` columns: a bigint only past 2^53, where a number would lose digits. */
  total_xp: number | bigint | null
  unassigned_xp: number | bigint | null
  luminance_earned: number | bigint | null
  luminance_total: number | bigint | null
  deaths: number | null
  /** The frame but `type` as the JSON text Python's `json.dumps` writes (numbers keep their int/float class). */
  stats_json: string
}
