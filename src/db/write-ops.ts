import type { CharacterStatsRow, PortalRow, RareRow, SpawnRow, TelemetryRecord } from '../protocol/frames.ts'
import type { PyValue } from '../protocol/py-json.ts'
import type { Micros } from '../protocol/time.ts'

/** One unit of persistence, produced by ingest and applied by the batched writer, in order. */
export type WriteOp =
  | { kind: 'telemetry'; row: TelemetryRecord }
  | { kind: 'kills'; character: string; delta: number }
  | { kind: 'spawn'; row: SpawnRow }
  | { kind: 'rare'; row: RareRow; sessionId: string | null }
  | { kind: 'portal'; row: PortalRow }
  | { kind: 'character_stats'; row: CharacterStatsRow }
  | { kind: 'combat'; character: string; sessionId: string; stats: PyValue; at: Micros }

export type { CharacterStatsRow, PortalRow, RareRow, SpawnRow }
