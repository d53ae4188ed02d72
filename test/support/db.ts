import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { inject } from 'vitest'
import { withDatabase } from '../../src/db/pool.ts'
import { TEST_SERVER_URL } from './global-setup.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string
  }
}

/** A fresh database cloned from the run's template (schema already applied). */
export interface TestDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

/** Clones the template into a new database named after the run's template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = inject('templateDatabase')
  const name = `${template}_${randomBytes(4).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${template}`)
  return {
    name,
    url: withDatabase(TEST_SERVER_URL, name),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  }
}

/** The name of a database that does not exist yet, for tests of start-up DDL. */
export function freshDatabaseName(): string {
  return `${inject('templateDatabase')}_${randomBytes(4).toString('hex')}`
}

export async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_SERVER_URL })
  await admin.connect()
  try {
    await admin.query(sql)
  } finally {
    await admin.end()
  }
}

/** One query on the database at `url`, on a connection of its own; resolves the rows. */
export async function sql<R extends pg.QueryResultRow = Record<string, any>>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

export { TEST_SERVER_URL }
