/**
 * Persist-path benchmark (not a test): the batched writer alone against a real PostgreSQL,
 * no sockets. Usage: node bench/writer.ts [--rows 200000] [--batch 10000]
 */
import { parseArgs } from 'node:util'
import pg from 'pg'
import pino from 'pino'
import { createPool, ensureDatabase } from '../src/db/pool.ts'
import { initSchema } from '../src/db/schema.ts'
import { Persistence } from '../src/db/persistence.ts'
import { decodeFrame } from '../src/protocol/decode-frame.ts'

const { values: a } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '2' },
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/overlord_bench_writer' },
  },
})
const name = new URL(a.database).pathname.slice(1)
const admin = new pg.Client({ connectionString: a.database.replace(`/${name}`, '/postgres') })
await admin.connect()
await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
await admin.end()
await ensureDatabase(a.database, name)
const db = createPool({ connectionString: a.database })
await initSchema(db)
const writer = new Persistence({
  db,
  logger: pino({ level: 'warn' }),
  batchSize: Number(a.batch),
  useCopy: true,
  bulkConcurrency: Number(a.concurrency),
})
const rows = Number(a.rows)
const frame = (i: number) => ({
  type: 'telemetry',
  character_name: `W ${i % 70}`,
  session_id: 's',
  timestamp: new Date().toISOString(),
  ew: i % 100,
  ns: 1,
  z: 0,
  kills: i,
  kills_per_hour: '340.5',
  deaths: '0',
  total_deaths: '1',
  prismatic_taper_count: '5',
  vt_state: 'Combat',
})
const start = performance.now()
for (let i = 0; i < rows; i++) {
  const decoded = decodeFrame(JSON.stringify(frame(i)), Date.now() * 1000)
  if (!decoded.ok || decoded.frame.kind !== 'telemetry') throw new Error('bench frame refused')
  writer.enqueue({ kind: 'telemetry', row: decoded.frame.record })
}
const enqueued = performance.now()
await writer.flush()
const done = performance.now()
console.log(
  JSON.stringify({
    rows,
    batch: Number(a.batch),
    concurrency: Number(a.concurrency),
    enqueue_ms: Math.round(enqueued - start),
    persisted_per_s: Math.round(rows / ((done - start) / 1000)),
    batches: writer.stats.batches,
  }),
)
await db.end()
