import { parsePyJson, toWireValue } from '../protocol/py-json.ts'
import { formatInstant, type Micros } from '../protocol/time.ts'
import type { Db } from './pool.ts'
import { isoRows } from './read-telemetry.ts'

/** `/character-stats/list`. */
export async function characterStatsList(db: Db): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    'SELECT character_name, level, timestamp FROM character_stats ORDER BY character_name',
  )
  return isoRows(rows, ['timestamp'])
}

/**
 * A stored JSONB value as the legacy serves it (`json.loads` of its text, then `json.dumps`):
 * numbers keep their digits and int/float class (`105.0`, integers past 2^53).
 */
const served = (text: string): Record<string, unknown> =>
  toWireValue(parsePyJson(text)) as Record<string, unknown>

/** `/character-stats/{name}`: the stored frame (minus `type`) with `character_name` and `timestamp`. */
export async function characterStats(db: Db, name: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.query<{ character_name: string; timestamp: string; stats_data: string }>(
    'SELECT character_name, timestamp, stats_data::text AS stats_data FROM character_stats WHERE character_name = $1',
    [name],
  )
  const row = isoRows(rows, ['timestamp'])[0]
  return row && { ...served(row.stats_data), character_name: row.character_name, timestamp: row.timestamp }
}

/** `/combat-stats/{name}`: the latest session's snapshot and the lifetime sums. */
export async function combatStats(db: Db, name: string, sessionId: string | null) {
  const session = await db.query<{ session_id: string; data: string }>(
    `SELECT session_id, data::text AS data FROM combat_stats_sessions WHERE character_name = $1
       AND ($2::text IS NULL OR session_id = $2)
     ORDER BY updated_at DESC LIMIT 1`,
    [name, sessionId],
  )
  const life = await db.query<{ lifetime: string }>(
    'SELECT lifetime::text AS lifetime FROM combat_stats WHERE character_name = $1',
    [name],
  )
  const s = session.rows[0]
  const lifetime = life.rows[0]?.lifetime
  return {
    character_name: name,
    session: s ? { session_id: s.session_id, ...served(s.data) } : null,
    lifetime: lifetime === undefined ? null : served(lifetime),
  }
}

/**
 * `/portals`: what the 1 h retention keeps, ordered as the primary's SQL orders them (CONTRACT.md §4):
 * names compare in the database's collation, as they do there.
 */
export async function portals(db: Db): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    'SELECT portal_name, ns, ew, z, discovered_at, discovered_by FROM portals ORDER BY portal_name, ns, ew',
  )
  return isoRows(rows, ['discovered_at'])
}

/** `/spawns/heatmap`: spawns since `since` grouped on coordinates rounded to 0.1, densest first. */
export async function spawnHeatmap(db: Db, since: Micros, limit: number) {
  const { rows } = await db.query<{ ew: number; ns: number; intensity: number }>(
    `SELECT round(ew::numeric, 1)::float8 AS ew, round(ns::numeric, 1)::float8 AS ns, count(*)::int AS intensity
     FROM spawn_events WHERE timestamp >= $1 AND ew IS NOT NULL AND ns IS NOT NULL
     GROUP BY 1, 2 ORDER BY intensity DESC, ew, ns LIMIT $2`,
    [formatInstant(since), limit],
  )
  return rows
}
