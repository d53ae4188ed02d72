import type pg from 'pg'
import { ERR, OverlordError } from '../protocol/errors.ts'
import { applyBatch, TELEMETRY_TYPES } from './apply-batch.ts'
import type { Db } from './pool.ts'
import type { WriteOp } from './write-ops.ts'

/** The primary's database: only the primary role may write it (CONTRACT.md §10). */
export const PRIMARY_DATABASE = 'dereth'

/**
 * Checks, without any DDL, that a schema someone else created (the Python tracker's `dereth`, at
 * cutover) can be written correctly by this tracker. Two parts:
 *
 * 1. Column types. PostgreSQL's assignment casts would accept much that is wrong: a `jsonb` value
 *    into a `text` column (Python would then read a string, not an object), an instant into
 *    `timestamp without time zone` (shifted by the session's zone). Each column the writer fills
 *    must be of a type that stores what Python stores.
 * 2. The writer's own statements, run once each on made-up rows inside a transaction that is
 *    rolled back: a missing column, a `NOT NULL` the writer does not fill, a missing unique key an
 *    `ON CONFLICT` needs, a trigger or check that refuses. Nothing is committed (a sequence may
 *    skip the ids the probe drew: sequences are not transactional).
 */

/** Types a column may have, by what the writer puts in it. */
const KIND = {
  text: ['text', 'varchar'],
  instant: ['timestamptz'],
  float: ['float8', 'float4', 'numeric'],
  integer: ['int2', 'int4', 'int8', 'numeric'],
  jsonb: ['jsonb'],
  boolean: ['bool'],
} as const
type Kind = keyof typeof KIND

/** What each PostgreSQL type the writer sends a value as stores. */
const KIND_OF_TYPE: Record<string, Kind> = {
  text: 'text',
  timestamptz: 'instant',
  float8: 'float',
  int4: 'integer',
}

/** The telemetry columns, as the writer types them (apply-batch.ts). */
const TELEMETRY_KINDS: Record<string, Kind> = Object.fromEntries(
  Object.entries(TELEMETRY_TYPES).map(([column, type]) => [column, KIND_OF_TYPE[type]!]),
)

const POSITION = { ew: 'float', ns: 'float', z: 'float' } as const

/** Every column the tracker writes (CONTRACT.md §8), by table. */
export const WRITTEN_COLUMNS: Record<string, Record<string, Kind>> = {
  telemetry_events: TELEMETRY_KINDS,
  spawn_events: { character_name: 'text', mob: 'text', timestamp: 'instant', ...POSITION },
  rare_events: { character_name: 'text', name: 'text', timestamp: 'instant', ...POSITION },
  portals: { portal_name: 'text', ...POSITION, discovered_at: 'instant', discovered_by: 'text' },
  char_stats: { character_name: 'text', total_kills: 'integer' },
  rare_stats: { character_name: 'text', total_rares: 'integer' },
  rare_stats_sessions: { character_name: 'text', session_id: 'text', session_rares: 'integer' },
  combat_stats: { character_name: 'text', lifetime: 'jsonb', updated_at: 'instant' },
  combat_stats_sessions: { character_name: 'text', session_id: 'text', data: 'jsonb', updated_at: 'instant' },
  character_stats: {
    character_name: 'text',
    timestamp: 'instant',
    level: 'integer',
    total_xp: 'integer',
    unassigned_xp: 'integer',
    luminance_earned: 'integer',
    luminance_total: 'integer',
    deaths: 'integer',
    stats_data: 'jsonb',
  },
}

/** The one line that says what is wrong, for the operator (and the refusal at start-up). */
export class SchemaMismatch extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(problems.join('; '))
    this.problems = problems
    this.name = 'SchemaMismatch'
  }
}

/** The column-type problems of the current database, by `table.column`; empty when none. */
export async function columnProblems(db: Db): Promise<string[]> {
  const { rows } = await db.query<{ table_name: string; column_name: string; udt_name: string }>(
    `SELECT table_name, column_name, udt_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
    [Object.keys(WRITTEN_COLUMNS)],
  )
  const found = new Map(rows.map((r) => [`${r.table_name}.${r.column_name}`, r.udt_name]))
  const tables = new Set(rows.map((r) => r.table_name))
  const problems: string[] = []
  for (const [table, columns] of Object.entries(WRITTEN_COLUMNS)) {
    if (!tables.has(table)) {
      problems.push(`table ${table} is missing`)
      continue
    }
    for (const [column, kind] of Object.entries(columns)) {
      const udt = found.get(`${table}.${column}`)
      const accepted: readonly string[] = KIND[kind]
      if (udt === undefined) problems.push(`${table}.${column} is missing`)
      else if (!accepted.includes(udt))
        problems.push(`${table}.${column} is ${udt}, the writer needs ${accepted.join(' or ')}`)
    }
  }
  return problems
}

/** A character name no plugin can have (the probe's rows are never committed anyway). */
const PROBE = '~overlord-ts schema probe~'

/** One op of every kind the writer applies, on made-up rows. */
function probeOps(nowMicros: number): WriteOp[] {
  const at = nowMicros
  const pos = { ew: 1.5, ns: -2.5, z: 0 }
  return [
    {
      kind: 'telemetry',
      row: {
        character_name: PROBE,
        char_tag: null,
        session_id: 'probe',
        timestamp: at,
        received_at: at,
        ...pos,
        kills: 1,
        kills_per_hour: 1.5,
        onlinetime: '00:00:01',
        deaths: 0,
        total_deaths: 0,
        rares_found: 0,
        prismatic_taper_count: 0,
        vt_state: 'probe',
        mem_mb: 1,
        cpu_pct: 1,
        mem_handles: 1,
        latency_ms: 1,
      },
    },
    { kind: 'kills', character: PROBE, delta: 1 },
    { kind: 'spawn', row: { character_name: PROBE, mob: 'probe', timestamp: at, ...pos } },
    {
      kind: 'rare',
      row: { character_name: PROBE, name: 'probe', timestamp: at, ...pos },
      sessionId: 'probe',
    },
    {
      kind: 'portal',
      row: {
        portal_name: 'probe',
        ns: -89_999.9,
        ew: 89_999.9,
        z: 0,
        discovered_at: at,
        discovered_by: PROBE,
      },
    },
    {
      kind: 'character_stats',
      row: {
        character_name: PROBE,
        timestamp: at,
        level: 1,
        total_xp: 1,
        unassigned_xp: 0,
        luminance_earned: 0,
        luminance_total: 0,
        deaths: 0,
        stats_json: JSON.stringify({ character_name: PROBE, level: 1 }),
      },
    },
    { kind: 'combat', character: PROBE, sessionId: 'probe', stats: { kills: 1n }, at },
  ]
}

/** Runs the writer's statements once each in a transaction that is always rolled back. */
async function dryRunProblems(client: pg.PoolClient, useCopy: boolean): Promise<string[]> {
  await client.query('BEGIN')
  try {
    await applyBatch(client, probeOps(Date.now() * 1000), useCopy)
    return []
  } catch (err) {
    const e = err as { message?: string; table?: string; column?: string; constraint?: string }
    const where = [e.table, e.column].filter(Boolean).join('.')
    return [`the writer's statements fail here: ${e.message ?? String(err)}${where ? ` (${where})` : ''}`]
  } finally {
    await client.query('ROLLBACK')
  }
}

/**
 * Throws {@link SchemaMismatch} naming every problem when this database cannot be written as the
 * Python tracker writes it; runs no DDL and commits nothing.
 */
export async function verifyWritableSchema(db: Db, useCopy: boolean): Promise<void> {
  const problems = await columnProblems(db)
  // The statements can only be tried on tables that exist with the right columns.
  if (problems.length === 0) {
    const client = await db.connect()
    try {
      problems.push(...(await dryRunProblems(client, useCopy)))
    } finally {
      client.release()
    }
  }
  if (problems.length > 0) throw new SchemaMismatch(problems)
}

/** Whether TimescaleDB is installed in this database (then retention is its policies' job). */
export async function timescaleInstalled(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'",
  )
  return (rows[0]?.n ?? 0) > 0
}

export interface WritableOptions {
  role: 'shadow' | 'primary'
  readOnly: boolean
  /** The schema was made by someone else (`SKIP_SCHEMA_INIT`, always so in the primary role). */
  schemaFromElsewhere: boolean
  useCopy: boolean
}

/**
 * The start-up guard, on the database actually connected to (whatever the URL, `PGDATABASE` or a
 * pooler made of it): only the primary role writes `dereth`, and a schema made elsewhere is
 * checked before the first write. Returns the database's name; throws one clear line.
 */
export async function checkWritable(db: Db, o: WritableOptions): Promise<string> {
  const { rows } = await db.query<{ name: string }>('SELECT current_database() AS name')
  const name = rows[0]?.name ?? ''
  if (o.readOnly) return name
  if (o.role === 'shadow' && name === PRIMARY_DATABASE)
    throw new OverlordError(
      ERR.DB_SCHEMA,
      `refusing to write into the primary's database "${PRIMARY_DATABASE}": only TRACKER_ROLE=primary writes it (cutover flip)`,
    )
  if (o.schemaFromElsewhere) {
    try {
      await verifyWritableSchema(db, o.useCopy)
    } catch (err) {
      if (!(err instanceof SchemaMismatch)) throw err
      throw new OverlordError(
        ERR.DB_SCHEMA,
        `refusing to write database "${name}": its schema cannot be written correctly: ${err.message}`,
      )
    }
  }
  return name
}
