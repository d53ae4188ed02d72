import pg from 'pg'

/** What the rest of the tracker needs from a database: `pg.Pool`'s query surface. */
export type Db = pg.Pool

export interface PoolOptions {
  connectionString: string
  /** Pool size; the embedded database serves one connection at a time, so it uses 1. */
  max?: number
  applicationName?: string
}

const TIMESTAMPTZ_OID = 1184
const INT8_OID = 20
const NUMERIC_OID = 1700

/**
 * Type parsers for this project: timestamps stay text so microseconds survive (JavaScript's
 * Date keeps milliseconds), bigint and numeric become numbers (all our counters fit in 2^53).
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMPTZ_OID) return (v: string) => v
    if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v)
    return pg.types.getTypeParser(oid, format ?? 'text')
  },
}

/** Creates a `pg` pool whose sessions run in UTC, so timestamp text is always `+00`. */
export function createPool(options: PoolOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 4,
    application_name: options.applicationName ?? 'overlord-ts',
    options: '-c TimeZone=UTC',
    types,
    connectionTimeoutMillis: 5_000,
  } as pg.PoolConfig)
  // An idle client losing its server (restart, network) must not crash the process:
  // the next query gets a fresh client and the writer retries (see writer.ts).
  pool.on('error', () => {})
  return pool
}

/** Replaces the database name of a connection URL. */
export function withDatabase(connectionString: string, database: string): string {
  const url = new URL(connectionString)
  url.pathname = `/${database}`
  return url.toString()
}

/** Creates `database` if it does not exist, through a maintenance connection to `connectionString`. */
export async function ensureDatabase(connectionString: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(connectionString, 'postgres') })
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`)
  } catch (err) {
    // Two processes racing to create it: the loser sees duplicate_database (42P04).
    if ((err as { code?: string }).code !== '42P04') throw err
  } finally {
    await client.end()
  }
}
