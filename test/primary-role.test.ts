import { afterEach, describe, expect, it } from 'vitest'
import { buildTracker } from '../src/tracker/build-tracker.ts'
import { overlord } from './support/cli.ts'
import { withDatabase } from '../src/db/pool.ts'
import {
  adminQuery,
  createTestDatabase,
  freshDatabaseName,
  TEST_SERVER_URL,
  type TestDatabase,
  sql,
} from './support/db.ts'
import { startLegacyTracker } from './support/legacy-tracker.ts'
import { connectPlugin, getJson, SECRET, sendFrames, telemetry, waitForMetrics } from './support/tracker.ts'

/**
 * The primary role (issue 10 §2): the tracker after `cutover flip` writes a database the Python
 * tracker created. It must run no DDL there, and refuse, in one line, a schema it cannot write
 * correctly, before the first plugin frame could be half-written.
 */

/** Records every DDL command run in the database from now on (an event trigger; needs superuser). */
async function recordDdl(url: string): Promise<() => Promise<string[]>> {
  await sql(
    url,
    `CREATE TABLE ddl_log (tag text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
     CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
       $$ BEGIN INSERT INTO ddl_log (tag) VALUES (tg_tag); END $$;
     CREATE EVENT TRIGGER log_ddl ON ddl_command_start EXECUTE FUNCTION log_ddl();`,
  )
  return async () =>
    (await sql<{ tag: string }>(url, 'SELECT tag FROM ddl_log ORDER BY at')).map((r) => r.tag)
}

/** The real CLI's `serve`, in the primary role, on `url`: it is expected to refuse. */
const servePrimary = (url: string) =>
  overlord(['serve'], { TRACKER_ROLE: 'primary', DATABASE_URL: url, SHARED_SECRET: SECRET, PORT: '0' })

describe('the primary role on a schema made elsewhere', () => {
  let db: TestDatabase | undefined
  afterEach(async () => {
    await db?.drop()
    db = undefined
  })

  it('starts, writes every persisted type and runs no DDL', async () => {
    db = await createTestDatabase()
    const ddl = await recordDdl(db.url)
    const tracker = await buildTracker({
      role: 'primary',
      databaseUrl: db.url,
      sharedSecret: SECRET,
      skipSchemaInit: true,
    })
    try {
      const url = await tracker.listen(0)
      const metrics = (await getJson(`${url}/metrics.json`)).body
      expect(metrics.role).toBe('primary')
      expect(metrics.database).toBe(db.name)
      const ws = await connectPlugin(url.replace('http', 'ws'))
      await sendFrames(url, ws, [
        telemetry('Larsson', { kills: 3 }),
        { type: 'combat_stats', character_name: 'Larsson', session_id: 's1', stats: { kills: 3 } },
        { type: 'rare', character_name: 'Larsson', name: 'Pearl', ew: 1, ns: 2, z: 3 },
      ])
      await waitForMetrics(url, (m) => m.persist_pending === 0 && (m.persist_batches as number) > 0)
      ws.close()
      const rows = await sql(
        db.url,
        `SELECT (SELECT count(*) FROM telemetry_events)::int AS t, (SELECT count(*) FROM rare_events)::int AS r,
                (SELECT count(*) FROM combat_stats_sessions)::int AS c,
                (SELECT count(*) FROM char_stats WHERE character_name LIKE '%schema probe%')::int AS probe`,
      )
      expect(rows[0]).toEqual({ t: 1, r: 1, c: 1, probe: 0 })
    } finally {
      await tracker.close()
    }
    expect(await ddl()).toEqual([])
    // The trigger does see DDL: the shadow role's start-up on a fresh database is all DDL.
    await sql(db.url, 'CREATE TABLE proves_the_trigger_fires (x int)')
    expect(await ddl()).toEqual(['CREATE TABLE'])
  })

  it('starts with no DDL on the database the Python tracker created', async () => {
    const name = freshDatabaseName()
    await adminQuery(`CREATE DATABASE ${name}`)
    db = {
      name,
      url: withDatabase(TEST_SERVER_URL, name),
      drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    }
    const python = await startLegacyTracker({ databaseUrl: db.url, secret: SECRET })
    await python.stop()
    const ddl = await recordDdl(db.url)
    const tracker = await buildTracker({
      role: 'primary',
      databaseUrl: db.url,
      sharedSecret: SECRET,
      skipSchemaInit: true,
    })
    try {
      const url = await tracker.listen(0)
      const ws = await connectPlugin(url.replace('http', 'ws'))
      await sendFrames(url, ws, [
        telemetry('Larsson', { kills: 3 }),
        { type: 'spawn', character_name: 'Larsson', mob: 'Drudge', ew: 1, ns: 2, z: 0 },
      ])
      await waitForMetrics(url, (m) => m.persist_pending === 0 && (m.persist_batches as number) > 0)
      ws.close()
    } finally {
      await tracker.close()
    }
    expect(await ddl()).toEqual([])
    const rows = await sql(
      db.url,
      'SELECT (SELECT count(*) FROM telemetry_events)::int AS t, (SELECT count(*) FROM spawn_events)::int AS s',
    )
    expect(rows[0]).toEqual({ t: 1, s: 1 })
  })

  it('refuses, in one line, a unique key the writer needs that is missing', async () => {
    db = await createTestDatabase()
    await sql(db.url, 'DROP INDEX ux_portals_rounded_coords')
    const ddl = await recordDdl(db.url)
    const run = await servePrimary(db.url)
    expect(run.code).toBe(2)
    expect(run.stderr).toHaveLength(1)
    expect(run.stderr[0]).toMatch(
      new RegExp(
        `^overlord-ts: refusing to write database "${db.name}": its schema cannot be written correctly: .*no unique or exclusion constraint matching the ON CONFLICT`,
      ),
    )
    expect(await ddl()).toEqual([])
    // Nothing the probe tried was kept.
    const left = await sql(db.url, 'SELECT count(*)::int AS n FROM telemetry_events')
    expect(left[0]?.n).toBe(0)
  })

  it('refuses a column of a type Python would read back differently, naming it', async () => {
    db = await createTestDatabase()
    await sql(
      db.url,
      `ALTER TABLE character_stats ALTER COLUMN stats_data TYPE text;
       ALTER TABLE rare_events ALTER COLUMN timestamp TYPE timestamp;
       ALTER TABLE spawn_events DROP COLUMN mob`,
    )
    const run = await servePrimary(db.url)
    expect(run.code).toBe(2)
    expect(run.stderr).toHaveLength(1)
    const line = run.stderr[0]!
    expect(line).toContain('rare_events.timestamp is timestamp, the writer needs timestamptz')
    expect(line).toContain('spawn_events.mob is missing')
    expect(line).toContain('character_stats.stats_data is text, the writer needs jsonb')
  })

  it('keeps the shadow role off the primary database, before connecting to it', async () => {
    const run = await overlord(['serve'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/dereth',
      SHARED_SECRET: SECRET,
      PORT: '0',
    })
    expect(run.code).toBe(2)
    expect(run.stderr).toEqual([
      'overlord-ts: refusing to write into the primary\'s database "dereth": use dereth_ts, or READ_ONLY=true (only TRACKER_ROLE=primary writes it)',
    ])
  })
})
