import { formatInstant, type Micros, parsePgTimestamp } from '../protocol/time.ts'
import type { Db } from './pool.ts'

/** Telemetry fields every player entry carries (CONTRACT.md §4: all of §2 but `id` and `received_at`). */
const PLAYER_FIELDS = `t.character_name, t.char_tag, t.session_id, t.timestamp, t.ew, t.ns, t.z, t.kills,
  t.kills_per_hour, t.onlinetime, t.deaths, t.total_deaths, t.rares_found, t.prismatic_taper_count, t.vt_state,
  t.mem_mb, t.cpu_pct, t.mem_handles, t.latency_ms`

export type PlayerSnapshot = Record<string, unknown> & { character_name: string; timestamp: string }

const ts = (m: Micros): string => formatInstant(m)

/** Rewrites PostgreSQL timestamp text in `keys` of each row to Python isoformat, in place. */
export function isoRows<T extends object>(rows: T[], keys: readonly string[]): T[] {
  for (const row of rows) {
    for (const k of keys) {
      const v = (row as Record<string, unknown>)[k]
      if (typeof v === 'string') (row as Record<string, unknown>)[k] = formatInstant(parsePgTimestamp(v))
    }
  }
  return rows
}

/**
 * `/live`: per character its latest telemetry received after `since` (server receive time,
 * falling back to the client time for rows without one), with its kill and rare totals.
 */
export async function livePlayers(db: Db, since: Micros): Promise<PlayerSnapshot[]> {
  const { rows } = await db.query<PlayerSnapshot>(
    `SELECT ${PLAYER_FIELDS},
       COALESCE(cs.total_kills, 0) AS total_kills, COALESCE(rs.total_rares, 0) AS total_rares
     FROM (
       SELECT DISTINCT ON (character_name) *
       FROM telemetry_events
       WHERE received_at > $1 OR (received_at IS NULL AND timestamp > $1)
       ORDER BY character_name, timestamp DESC, id DESC
     ) t
     LEFT JOIN char_stats cs ON cs.character_name = t.character_name
     LEFT JOIN rare_stats rs ON rs.character_name = t.character_name
     ORDER BY t.character_name`,
    [ts(since)],
  )
  return isoRows(rows, ['timestamp'])
}

/** `/trails`: positions since `since` (client time), by character then time. */
export async function trails(db: Db, since: Micros): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    `SELECT character_name, ew, ns, z, timestamp FROM telemetry_events
     WHERE timestamp >= $1 ORDER BY character_name, timestamp, id`,
    [ts(since)],
  )
  return isoRows(rows, ['timestamp'])
}

export interface HistoryQuery {
  from: Micros | undefined
  to: Micros | undefined
  character: string | undefined
  limit: number
}

/** `/history`: kill history rows in time order, filtered by window and character. */
export async function history(db: Db, q: HistoryQuery): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    `SELECT character_name, timestamp, kills, kills_per_hour, ew, ns, z FROM telemetry_events
     WHERE ($1::timestamptz IS NULL OR timestamp >= $1)
       AND ($2::timestamptz IS NULL OR timestamp <= $2)
       AND ($3::text IS NULL OR character_name = $3)
     ORDER BY timestamp, id LIMIT $4`,
    [
      q.from === undefined ? null : ts(q.from),
      q.to === undefined ? null : ts(q.to),
      q.character ?? null,
      q.limit,
    ],
  )
  return isoRows(rows, ['timestamp'])
}

/** `/stats/{name}`: the character's latest telemetry, or undefined when it has none. */
export async function latestTelemetry(db: Db, character: string): Promise<PlayerSnapshot | undefined> {
  const { rows } = await db.query<PlayerSnapshot>(
    `SELECT ${PLAYER_FIELDS} FROM telemetry_events t WHERE t.character_name = $1
     ORDER BY t.timestamp DESC, t.id DESC LIMIT 1`,
    [character],
  )
  return isoRows(rows, ['timestamp'])[0]
}
