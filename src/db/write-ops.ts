import type { TelemetryRecord } from '../protocol/frames.ts'
import type { Micros } from '../protocol/time.ts'

/** One unit of persistence, produced by ingest and applied by the batched writer, in order. */
export type WriteOp =
  | { kind: 'telemetry'; row: TelemetryRecord }
  | { kind: 'kills'; character: string; delta: number }
  | { kind: 'spawn'; row: SpawnRow }
  | { kind: 'rare'; row: RareRow; sessionId: string | null }
  | { kind: 'portal'; row: PortalRow }
  | { kind: 'character_stats'; row: CharacterStatsRow }
  | { kind: 'combat'; character: string; sessionId: string; stats: unknown; at: Micros }

export interface SpawnRow {
  character_name: string
  mob: string | null
  timestamp: Micros
  ew: number | null
  ns: number | null
  z: number | null
}

export interface RareRow {
  character_name: string
  name: string | null
  timestamp: Micros
  ew: number | null
  ns: number | null
  z: number | null
}

export interface PortalRow {
  portal_name: string
  ns: number
  ew: number
  z: number | null
  discovered_at: Micros
  discovered_by: string
}

export interface CharacterStatsRow {
  character_name: string
  timestamp: Micros
  level: number | null
  total_xp: number | null
  unassigned_xp: number | null
  luminance_earned: number | null
  luminance_total: number | null
  deaths: number | null
  stats_data: Record<string, unknown>
}
