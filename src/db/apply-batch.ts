import type pg from 'pg'
import { TELEMETRY_COLUMNS, type TelemetryRecord } from '../protocol/frames.ts'
import { formatInstant, type Micros } from '../protocol/time.ts'
import { copyRows } from './copy.ts'
import { type PyValue, parsePyJson, stringifyPyJson } from '../protocol/py-json.ts'
import { addTrees, toStatsTree } from './combat.ts'
import type { CharacterStatsRow, PortalRow, RareRow, SpawnRow, WriteOp } from './write-ops.ts'

const ts = (m: Micros): string => formatInstant(m)

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * A counter map as the two arrays of an `unnest` upsert, in key order: concurrent batches of the
 * bulk lane then lock the same rows in the same order and cannot deadlock on them (PostgreSQL
 * reported `deadlock detected` on `char_stats` under load before; retried, but wasted).
 */
function keyOrdered(counts: ReadonlyMap<string, number>): [string[], number[]] {
  const entries = [...counts].sort(([a], [b]) => compareText(a, b))
  return [entries.map(([k]) => k), entries.map(([, n]) => n)]
}

/** The PostgreSQL type each telemetry column is written as (the schema check reads it too). */
export const TELEMETRY_TYPES: Record<(typeof TELEMETRY_COLUMNS)[number], string> = {
  character_name: 'text',
  char_tag: 'text',
  session_id: 'text',
  timestamp: 'timestamptz',
  received_at: 'timestamptz',
  ew: 'float8',
  ns: 'float8',
  z: 'float8',
  kills: 'int4',
  kills_per_hour: 'float8',
  onlinetime: 'text',
  deaths: 'int4',
  total_deaths: 'int4',
  rares_found: 'int4',
  prismatic_taper_count: 'int4',
  vt_state: 'text',
  mem_mb: 'float8',
  cpu_pct: 'float8',
  mem_handles: 'int4',
  latency_ms: 'float8',
}

const TELEMETRY_UNNEST = `INSERT INTO telemetry_events (${TELEMETRY_COLUMNS.join(', ')})
SELECT * FROM unnest(${TELEMETRY_COLUMNS.map((c, i) => `$${i + 1}::${TELEMETRY_TYPES[c]}[]`).join(', ')})`

const TIME_KEYS = new Set(['timestamp', 'received_at', 'discovered_at'])

/**
 * Column-major arrays for an UNNEST insert (one statement, one round trip, any batch size);
 * instants (epoch µs) go as ISO text so microseconds survive.
 */
function columns<R extends object>(rows: readonly R[], keys: readonly (keyof R & string)[]): unknown[][] {
  return keys.map((k) =>
    TIME_KEYS.has(k) ? rows.map((r) => ts(r[k] as Micros)) : rows.map((r) => signedZero(r[k])),
  )
}

/** node-pg writes -0 as "0"; a float8 keeps the sign of zero, as the legacy stores it. */
const signedZero = (v: unknown): unknown => (Object.is(v, -0) ? '-0' : v)

/**
 * Applies a batch of write ops inside the caller's transaction. Grouping is safe because
 * every group is either an insert or a commutative increment; combat snapshots, whose
 * lifetime update depends on order, are applied one by one in order. Telemetry, the bulk of
 * the volume, goes by COPY when `useCopy` (the embedded PGlite server does not speak COPY).
 */
export async function applyBatch(
  client: pg.PoolClient,
  ops: readonly WriteOp[],
  useCopy: boolean,
): Promise<number> {
  const telemetry: TelemetryRecord[] = []
  const spawns: SpawnRow[] = []
  const rares: RareRow[] = []
  const portals: PortalRow[] = []
  const kills = new Map<string, number>()
  const rareCounts = new Map<string, number>()
  const sessionRares = new Map<string, { character: string; session: string; n: number }>()
  const charStats = new Map<string, CharacterStatsRow>()
  const combat: Extract<WriteOp, { kind: 'combat' }>[] = []

  for (const op of ops) {
    switch (op.kind) {
      case 'telemetry':
        telemetry.push(op.row)
        break
      case 'kills':
        kills.set(op.character, (kills.get(op.character) ?? 0) + op.delta)
        break
      case 'spawn':
        spawns.push(op.row)
        break
      case 'rare': {
        rares.push(op.row)
        const c = op.row.character_name
        rareCounts.set(c, (rareCounts.get(c) ?? 0) + 1)
        if (op.sessionId !== null) {
          const key = `${c}\u0000${op.sessionId}`
          const entry = sessionRares.get(key) ?? { character: c, session: op.sessionId, n: 0 }
          entry.n += 1
          sessionRares.set(key, entry)
        }
        break
      }
      case 'portal':
        portals.push(op.row)
        break
      case 'character_stats':
        charStats.set(op.row.character_name, op.row)
        break
      case 'combat':
        combat.push(op)
        break
    }
  }

  let rows = 0
  if (telemetry.length > 0) {
    if (useCopy) {
      const values = telemetry.map((r) =>
        TELEMETRY_COLUMNS.map((c) => (c === 'timestamp' || c === 'received_at' ? ts(r[c]) : r[c])),
      )
      await copyRows(client, 'telemetry_events', TELEMETRY_COLUMNS, values)
    } else {
      await client.query(TELEMETRY_UNNEST, columns(telemetry, TELEMETRY_COLUMNS))
    }
    rows += telemetry.length
  }
  if (kills.size > 0) {
    await client.query(
      `INSERT INTO char_stats (character_name, total_kills)
       SELECT * FROM unnest($1::text[], $2::int8[])
       ON CONFLICT (character_name) DO UPDATE SET total_kills = char_stats.total_kills + EXCLUDED.total_kills`,
      keyOrdered(kills),
    )
  }
  if (spawns.length > 0) {
    await client.query(
      `INSERT INTO spawn_events (character_name, mob, timestamp, ew, ns, z)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::float8[], $6::float8[])`,
      columns(spawns, ['character_name', 'mob', 'timestamp', 'ew', 'ns', 'z']),
    )
    rows += spawns.length
  }
  if (rares.length > 0) {
    await client.query(
      `INSERT INTO rare_events (character_name, name, timestamp, ew, ns, z)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::float8[], $6::float8[])`,
      columns(rares, ['character_name', 'name', 'timestamp', 'ew', 'ns', 'z']),
    )
    await client.query(
      `INSERT INTO rare_stats (character_name, total_rares)
       SELECT * FROM unnest($1::text[], $2::int8[])
       ON CONFLICT (character_name) DO UPDATE SET total_rares = rare_stats.total_rares + EXCLUDED.total_rares`,
      keyOrdered(rareCounts),
    )
    if (sessionRares.size > 0) {
      const s = [...sessionRares.values()].sort(
        (a, b) => compareText(a.character, b.character) || compareText(a.session, b.session),
      )
      await client.query(
        `INSERT INTO rare_stats_sessions (character_name, session_id, session_rares)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])
         ON CONFLICT (character_name, session_id)
         DO UPDATE SET session_rares = rare_stats_sessions.session_rares + EXCLUDED.session_rares`,
        [s.map((e) => e.character), s.map((e) => e.session), s.map((e) => e.n)],
      )
    }
    rows += rares.length
  }
  if (portals.length > 0) {
    // First discovery wins: a later frame for the same rounded coordinates changes nothing (§2).
    await client.query(
      `INSERT INTO portals (portal_name, ns, ew, z, discovered_at, discovered_by)
       SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[], $5::timestamptz[], $6::text[])
       ON CONFLICT ((round(ns::numeric, 1)), (round(ew::numeric, 1))) DO NOTHING`,
      columns(portals, ['portal_name', 'ns', 'ew', 'z', 'discovered_at', 'discovered_by']),
    )
    rows += portals.length
  }
  if (charStats.size > 0) {
    const s = [...charStats.values()]
    await client.query(
      `INSERT INTO character_stats (character_name, timestamp, level, total_xp, unassigned_xp,
         luminance_earned, luminance_total, deaths, stats_data)
       SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int4[], $4::int8[], $5::int8[],
         $6::int8[], $7::int8[], $8::int4[], $9::jsonb[])
       ON CONFLICT (character_name) DO UPDATE SET timestamp = EXCLUDED.timestamp, level = EXCLUDED.level,
         total_xp = EXCLUDED.total_xp, unassigned_xp = EXCLUDED.unassigned_xp,
         luminance_earned = EXCLUDED.luminance_earned, luminance_total = EXCLUDED.luminance_total,
         deaths = EXCLUDED.deaths, stats_data = EXCLUDED.stats_data`,
      [
        ...columns(s, [
          'character_name',
          'timestamp',
          'level',
          'total_xp',
          'unassigned_xp',
          'luminance_earned',
          'luminance_total',
          'deaths',
        ]),
        s.map((r) => r.stats_json),
      ],
    )
    rows += s.length
  }
  for (const op of combat) {
    await applyCombat(client, op)
    rows += 1
  }
  return rows
}

/**
 * Session snapshot upsert plus lifetime += (new snapshot − previous snapshot of that session) (§6),
 * with Python's int/float arithmetic on the JSON as the legacy reads it back (`json.loads` of the
 * `jsonb` text), so both trackers store the same numbers.
 */
async function applyCombat(client: pg.PoolClient, op: Extract<WriteOp, { kind: 'combat' }>): Promise<void> {
  const prev = await client.query<{ data: string }>(
    'SELECT data::text AS data FROM combat_stats_sessions WHERE character_name = $1 AND session_id = $2 FOR UPDATE',
    [op.character, op.sessionId],
  )
  const diff = addTrees(toStatsTree(op.stats), toStatsTree(stored(prev.rows[0]?.data)), -1)
  const at = ts(op.at)
  // /combat-stats serves the character's most recently updated session. The legacy's clock has
  // microseconds, ours milliseconds: a burst of snapshots must still order as it was written.
  await client.query(
    `INSERT INTO combat_stats_sessions (character_name, session_id, data, updated_at)
     VALUES ($1, $2, $3, GREATEST($4::timestamptz,
       (SELECT max(updated_at) + interval '1 microsecond' FROM combat_stats_sessions WHERE character_name = $1)))
     ON CONFLICT (character_name, session_id) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at`,
    [op.character, op.sessionId, stringifyPyJson(op.stats), at],
  )
  const life = await client.query<{ lifetime: string }>(
    'SELECT lifetime::text AS lifetime FROM combat_stats WHERE character_name = $1 FOR UPDATE',
    [op.character],
  )
  const lifetime = addTrees(toStatsTree(stored(life.rows[0]?.lifetime)), diff)
  await client.query(
    `INSERT INTO combat_stats (character_name, lifetime, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (character_name) DO UPDATE SET lifetime = EXCLUDED.lifetime, updated_at = EXCLUDED.updated_at`,
    [op.character, stringifyPyJson(lifetime), at],
  )
}

const stored = (text: string | undefined): PyValue | undefined =>
  text === undefined ? undefined : parsePyJson(text)
