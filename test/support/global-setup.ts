import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createPool, withDatabase } from '../../src/db/pool.ts'
import { initSchema } from '../../src/db/schema.ts'

/** The server the integration tests use; CI has one at 127.0.0.1:5432 (trust auth). */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/**
 * Creates one template database with the schema for the whole run (graphile/worker's way);
 * each test file clones it, which is much faster than running the DDL per file.
 */
export default async function setup({ provide }: { provide: (key: string, value: string) => void }) {
  const template = `overlord_tpl_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: TEST_SERVER_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${template}`)
  const pool = createPool({ connectionString: withDatabase(TEST_SERVER_URL, template) })
  await initSchema(pool)
  await pool.end()
  provide('templateDatabase', template)
  process.env.OVERLORD_TEST_TEMPLATE = template
  return async () => {
    const { rows } = await admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname LIKE $1',
      [`${template}%`],
    )
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`)
    await admin.end()
  }
}
