import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPool, type Db } from '../src/db/pool.ts'
import { Persistence } from '../src/db/persistence.ts'
import type { WriteOp } from '../src/db/write-ops.ts'
import type { TelemetryRecord } from '../src/protocol/frames.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { captureLogs } from './support/logs.ts'

// The decoder keeps what a column cannot hold away from the writer; these ops bypass it, standing
// for whatever the database may still refuse (a constraint an operator added, a type we missed).
let database: TestDatabase
let db: Db
beforeAll(async () => {
  database = await createTestDatabase()
  db = createPool({ connectionString: database.url })
})
afterAll(async () => {
  await db.end()
  await database.drop()
})

const NOW = Date.now() * 1000
const row = (character: string, i: number, fields: Partial<TelemetryRecord> = {}): TelemetryRecord => ({
  character_name: character,
  char_tag: null,
  session_id: 's',
  timestamp: NOW + i,
  received_at: NOW + i,
  ew: 1,
  ns: 2,
  z: 3,
  kills: i,
  kills_per_hour: null,
  onlinetime: null,
  deaths: null,
  total_deaths: null,
  rares_found: null,
  prismatic_taper_count: null,
  vt_state: null,
  mem_mb: null,
  cpu_pct: null,
  mem_handles: null,
  latency_ms: null,
  ...fields,
})

describe('a batch the database refuses', () => {
  it('keeps every valid op of it: 1 000 valid rows and kills land, each refused op is counted, logs stay few', async () => {
    const { logger, lines } = captureLogs('info')
    const writer = new Persistence({ db, logger, useCopy: true, batchSize: 500 })
    let validKills = 0
    for (let i = 0; i < 1_000; i++) {
      writer.enqueue({ kind: 'telemetry', row: row(`Valid ${i % 10}`, i) })
      writer.enqueue({ kind: 'kills', character: `Valid ${i % 10}`, delta: 3 })
      validKills += 3
      if (i % 20 === 0) {
        // NUL in text and an int4 overflow: PostgreSQL refuses both (22021, 22003).
        writer.enqueue({ kind: 'telemetry', row: row('Bad\u0000Name', i) })
        writer.enqueue({ kind: 'telemetry', row: row('Overflow', i, { kills: 2 ** 40 }) })
        writer.enqueue({ kind: 'kills', character: 'Bad\u0000Name', delta: 1 } satisfies WriteOp)
      }
    }
    await writer.flush()
    const telemetry = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM telemetry_events WHERE character_name LIKE 'Valid %'",
    )
    const kills = await db.query<{ n: number }>(
      "SELECT sum(total_kills)::int AS n FROM char_stats WHERE character_name LIKE 'Valid %'",
    )
    expect(telemetry.rows[0]!.n).toBe(1_000)
    expect(kills.rows[0]!.n).toBe(validKills)
    expect(writer.stats.rejected).toBe(150)
    expect(writer.stats.rejectedByReason).toEqual({ '22021': 100, '22003': 50 })
    await writer.close()
    // One record per reason per interval, not one per refused op.
    const refusals = lines.filter((l) => String(l.msg).includes('refused'))
    expect(refusals.length).toBeLessThanOrEqual(6)
  })
})
