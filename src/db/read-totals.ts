import { formatInstant, type Micros } from '../protocol/time.ts'
import type { Db } from './pool.ts'

/** Kill and rare totals of one character; 0 when it has none. */
export async function characterTotals(
  db: Db,
  character: string,
): Promise<{ total_kills: number; total_rares: number }> {
  const { rows } = await db.query<{ total_kills: number; total_rares: number }>(
    `SELECT COALESCE((SELECT total_kills FROM char_stats WHERE character_name = $1), 0) AS total_kills,
            COALESCE((SELECT total_rares FROM rare_stats WHERE character_name = $1), 0) AS total_rares`,
    [character],
  )
  return rows[0] ?? { total_kills: 0, total_rares: 0 }
}

/** `/total-kills`: the sum over `char_stats`. */
export async function totalKills(db: Db): Promise<number> {
  const { rows } = await db.query<{ total: number }>(
    'SELECT COALESCE(sum(total_kills), 0) AS total FROM char_stats',
  )
  return rows[0]?.total ?? 0
}

/** `/total-rares`: all-time from `rare_stats`, today from `rare_events` since 00:00 UTC of `now`. */
export async function totalRares(db: Db, now: Micros): Promise<{ all_time: number; today: number }> {
  const day = new Date(Math.floor(now / 1000))
  const midnight = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()) * 1000
  const { rows } = await db.query<{ all_time: number; today: number }>(
    `SELECT COALESCE((SELECT sum(total_rares) FROM rare_stats), 0) AS all_time,
            (SELECT count(*) FROM rare_events WHERE timestamp >= $1) AS today`,
    [formatInstant(midnight)],
  )
  return rows[0] ?? { all_time: 0, today: 0 }
}
