import type { Db } from './pool.ts'

/** Retention periods of CONTRACT.md §8. */
export const RETENTION = {
  telemetry_events: '30 days',
  spawn_events: '7 days',
} as const

/** Idempotent DDL for the contract's tables (CONTRACT.md §8); safe to run at every start. */
const TABLES = `
CREATE TABLE IF NOT EXISTS telemetry_events (
  id BIGSERIAL,
  character_name TEXT NOT NULL,
  char_tag TEXT,
  session_id TEXT,
  timestamp TIMESTAMPTZ NOT NULL,
  received_at TIMESTAMPTZ,
  ew DOUBLE PRECISION,
  ns DOUBLE PRECISION,
  z DOUBLE PRECISION,
  kills INTEGER,
  kills_per_hour DOUBLE PRECISION,
  onlinetime TEXT,
  deaths INTEGER,
  total_deaths INTEGER,
  rares_found INTEGER,
  prismatic_taper_count INTEGER,
  vt_state TEXT,
  mem_mb DOUBLE PRECISION,
  cpu_pct DOUBLE PRECISION,
  mem_handles INTEGER,
  latency_ms DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS ix_telemetry_events_character_timestamp
  ON telemetry_events (character_name, timestamp DESC);
-- Not in the legacy schema: /live's 30 s window is on received_at (CONTRACT.md §6), and
-- without this index its refresh scans the whole retention period.
CREATE INDEX IF NOT EXISTS ix_telemetry_events_received_at ON telemetry_events (received_at DESC);

CREATE TABLE IF NOT EXISTS spawn_events (
  id BIGSERIAL,
  character_name TEXT NOT NULL,
  mob TEXT,
  timestamp TIMESTAMPTZ NOT NULL,
  ew DOUBLE PRECISION,
  ns DOUBLE PRECISION,
  z DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS ix_spawn_events_timestamp ON spawn_events (timestamp DESC);

CREATE TABLE IF NOT EXISTS rare_events (
  id BIGSERIAL PRIMARY KEY,
  character_name TEXT NOT NULL,
  name TEXT,
  timestamp TIMESTAMPTZ NOT NULL,
  ew DOUBLE PRECISION,
  ns DOUBLE PRECISION,
  z DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS portals (
  id BIGSERIAL PRIMARY KEY,
  portal_name TEXT NOT NULL,
  ns DOUBLE PRECISION NOT NULL,
  ew DOUBLE PRECISION NOT NULL,
  z DOUBLE PRECISION,
  discovered_at TIMESTAMPTZ NOT NULL,
  discovered_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_portals_rounded_coords
  ON portals ((round(ns::numeric, 1)), (round(ew::numeric, 1)));

CREATE TABLE IF NOT EXISTS char_stats (
  character_name TEXT PRIMARY KEY,
  total_kills BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rare_stats (
  character_name TEXT PRIMARY KEY,
  total_rares BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rare_stats_sessions (
  character_name TEXT NOT NULL,
  session_id TEXT NOT NULL,
  session_rares BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (character_name, session_id)
);

CREATE TABLE IF NOT EXISTS combat_stats (
  character_name TEXT PRIMARY KEY,
  lifetime JSONB NOT NULL DEFAULT '{}'::jsonb,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS combat_stats_sessions (
  character_name TEXT NOT NULL,
  session_id TEXT NOT NULL,
  data JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (character_name, session_id)
);

CREATE TABLE IF NOT EXISTS character_stats (
  character_name TEXT PRIMARY KEY,
  timestamp TIMESTAMPTZ NOT NULL,
  level INTEGER,
  total_xp BIGINT,
  unassigned_xp BIGINT,
  luminance_earned BIGINT,
  luminance_total BIGINT,
  deaths INTEGER,
  stats_data JSONB NOT NULL
);

CREATE TABLE IF NOT EXISTS server_status (
  id INTEGER PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  server_name TEXT,
  status TEXT,
  latency_ms DOUBLE PRECISION,
  player_count INTEGER,
  last_check TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS users (
  id SERIAL PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  is_admin BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
`

/** Whether the TimescaleDB extension is installed or installable on this server. */
export async function timescaleAvailable(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'",
  )
  return (rows[0]?.n ?? 0) > 0
}

export interface SchemaResult {
  /** True when the hypertables and retention policies are TimescaleDB's; false means plain tables. */
  timescale: boolean
}

/**
 * Creates every table, index and (with TimescaleDB) hypertable and retention policy.
 * Idempotent: each statement is a no-op on an up-to-date database.
 */
export async function initSchema(db: Db): Promise<SchemaResult> {
  const timescale = await timescaleAvailable(db)
  if (timescale) await db.query('CREATE EXTENSION IF NOT EXISTS timescaledb')
  await db.query(TABLES)
  if (timescale) {
    for (const [table, interval] of Object.entries(RETENTION)) {
      await db.query(
        `SELECT create_hypertable('${table}', 'timestamp', if_not_exists => TRUE, migrate_data => TRUE)`,
      )
      await db.query(`SELECT add_retention_policy('${table}', INTERVAL '${interval}', if_not_exists => TRUE)`)
    }
  }
  return { timescale }
}
