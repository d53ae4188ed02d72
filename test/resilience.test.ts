import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { buildTracker, type TrackerOptions } from '../src/tracker/build-tracker.ts'
import { adminQuery, createTestDatabase, freshDatabaseName, TEST_SERVER_URL } from './support/db.ts'
import { startTcpProxy } from './support/tcp-proxy.ts'
import {
  closeCode,
  connectPlugin,
  getJson,
  SECRET,
  sendFrames,
  telemetry,
  waitForMetrics,
} from './support/tracker.ts'

const count = async (url: string, sql: string): Promise<number> => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return Number((await c.query(sql)).rows[0].n)
  } finally {
    await c.end()
  }
}

/** A tracker whose database connections go through a TCP relay the test can take down. */
async function trackerBehindRelay(options: Partial<TrackerOptions> = {}) {
  const database = await createTestDatabase()
  const target = new URL(database.url)
  const relay = await startTcpProxy(target.hostname, Number(target.port || 5432))
  const viaRelay = new URL(database.url)
  viaRelay.port = String(relay.port)
  const tracker = await buildTracker({
    databaseUrl: viaRelay.toString(),
    sharedSecret: SECRET,
    skipSchemaInit: true,
    ...options,
  })
  const url = await tracker.listen(0)
  return {
    database,
    relay,
    tracker,
    url,
    async close() {
      await tracker.close()
      await relay.close()
      await database.drop()
    },
  }
}

describe('a database outage during ingest', () => {
  it('loses nothing: frames keep flowing, writes are retried and land once the database is back', async () => {
    const { database, relay: proxy, tracker, url, close } = await trackerBehindRelay()
    try {
      const ws = await connectPlugin(url.replace('http', 'ws'))
      const frames = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => telemetry('Survivor', { kills: from + i, session_id: 'outage' }))
      await sendFrames(url, ws, frames(0, 300))
      proxy.down()
      // Ingest goes on while the database is away: the plugin is never blocked or closed.
      await sendFrames(url, ws, frames(300, 300))
      const during = await waitForMetrics(url, (m) => m.persist_retries > 0)
      expect(during.frames_accepted).toBe(600)
      expect(ws.readyState).toBe(ws.OPEN)
      proxy.up()
      await sendFrames(url, ws, frames(600, 300))
      await tracker.settle()
      expect(
        await count(
          database.url,
          "SELECT count(*) AS n FROM telemetry_events WHERE character_name = 'Survivor'",
        ),
      ).toBe(900)
      expect(
        await count(
          database.url,
          "SELECT total_kills AS n FROM char_stats WHERE character_name = 'Survivor'",
        ),
      ).toBe(899)
      expect((await getJson(`${url}/metrics.json`)).body.persist_dropped).toBe(0)
      ws.close()
    } finally {
      await close()
    }
  })

  it('drops and counts what overflows the bounded write buffer, without blocking the plugin', async () => {
    const { database, relay: proxy, tracker, url, close } = await trackerBehindRelay({ writeMaxPending: 100 })
    try {
      const ws = await connectPlugin(url.replace('http', 'ws'))
      proxy.down()
      await sendFrames(
        url,
        ws,
        Array.from({ length: 250 }, (_, i) => telemetry('Overflow', { kills: i })),
      )
      const m = await waitForMetrics(url, (x) => x.frames_accepted === 250)
      // 250 telemetry ops plus kill increments against a 100-op bound per lane: the rest is dropped, counted.
      expect(m.persist_dropped).toBeGreaterThan(0)
      expect(m.persist_pending).toBeLessThanOrEqual(200)
      expect(ws.readyState).toBe(ws.OPEN)
      proxy.up()
      await tracker.settle()
      const stored = await count(
        database.url,
        "SELECT count(*) AS n FROM telemetry_events WHERE character_name = 'Overflow'",
      )
      expect(stored).toBeGreaterThan(0)
      expect(stored).toBeLessThan(250)
      ws.close()
    } finally {
      await close()
    }
  })

  it('survives the server killing its connections mid-stream', async () => {
    const database = await createTestDatabase()
    const tracker = await buildTracker({
      databaseUrl: database.url,
      sharedSecret: SECRET,
      skipSchemaInit: true,
    })
    const url = await tracker.listen(0)
    try {
      const ws = await connectPlugin(url.replace('http', 'ws'))
      for (let round = 0; round < 5; round++) {
        await sendFrames(
          url,
          ws,
          Array.from({ length: 200 }, (_, i) => telemetry(`Kill ${round}`, { kills: i })),
        )
        await adminQuery(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database.name}' AND pid <> pg_backend_pid()`,
        )
      }
      await tracker.settle()
      expect(await count(database.url, 'SELECT count(*) AS n FROM telemetry_events')).toBe(1000)
      ws.close()
    } finally {
      await tracker.close()
      await database.drop()
    }
  })
})

describe('settle under load', () => {
  it('returns once what was queued before it is written, while frames keep arriving', async () => {
    const t = await trackerBehindRelay()
    try {
      const ws = await connectPlugin(t.url.replace('http', 'ws'))
      await sendFrames(
        t.url,
        ws,
        Array.from({ length: 500 }, (_, i) => telemetry('Steady', { kills: i })),
      )
      let i = 0
      const flood = setInterval(() => {
        for (let k = 0; k < 50; k++) ws.send(JSON.stringify(telemetry('Flood', { kills: i++ })))
      }, 1)
      try {
        await t.tracker.settle()
      } finally {
        clearInterval(flood)
      }
      expect(
        await count(
          t.database.url,
          "SELECT count(*) AS n FROM telemetry_events WHERE character_name = 'Steady'",
        ),
      ).toBe(500)
      ws.close()
    } finally {
      await t.close()
    }
  })
})

describe('start-up with the database away', () => {
  it('waits for a database that comes up late, and fails clearly for one that never does', async () => {
    const database = await createTestDatabase()
    const target = new URL(database.url)
    const relay = await startTcpProxy(target.hostname, Number(target.port || 5432))
    const viaRelay = new URL(database.url)
    viaRelay.port = String(relay.port)
    try {
      relay.down()
      const late = buildTracker({ databaseUrl: viaRelay.toString(), sharedSecret: SECRET })
      setTimeout(() => relay.up(), 700)
      const tracker = await late
      expect((await getJson(`${await tracker.listen(0)}/health`)).status).toBe(200)
      await tracker.close()

      relay.down()
      await expect(
        buildTracker({ databaseUrl: viaRelay.toString(), sharedSecret: SECRET, startupWaitMs: 300 }),
      ).rejects.toMatchObject({ code: 'DB_ERR_UNAVAILABLE' })
    } finally {
      await relay.close()
      await database.drop()
    }
  })
})

describe('start-up modes', () => {
  it('creates the schema on an empty database, idempotently', async () => {
    const name = freshDatabaseName()
    await adminQuery(`CREATE DATABASE ${name}`)
    const url = new URL(TEST_SERVER_URL)
    url.pathname = `/${name}`
    try {
      for (let i = 0; i < 2; i++) {
        const tracker = await buildTracker({ databaseUrl: url.toString() })
        await tracker.close()
      }
      expect(
        await count(
          url.toString(),
          "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
        ),
      ).toBe(12)
    } finally {
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    }
  })

  it('read-only mode serves reads from an existing database, writes nothing and refuses ingest', async () => {
    const database = await createTestDatabase()
    const writer = await buildTracker({
      databaseUrl: database.url,
      sharedSecret: SECRET,
      skipSchemaInit: true,
    })
    const wurl = await writer.listen(0)
    const w = await connectPlugin(wurl.replace('http', 'ws'))
    await sendFrames(wurl, w, [telemetry('Primary Player', { kills: 1 })])
    await writer.settle()
    w.close()
    await writer.close()

    const reader = await buildTracker({ databaseUrl: database.url, sharedSecret: SECRET, readOnly: true })
    const url = await reader.listen(0)
    try {
      const live = (await getJson(`${url}/live`)).body
      expect(live.players.map((p: any) => p.character_name)).toEqual(['Primary Player'])
      const plugin = await connectPlugin(url.replace('http', 'ws'))
      expect(await closeCode(plugin)).toBe(1008)
      expect((await getJson(`${url}/metrics.json`)).body.read_only).toBe(true)
    } finally {
      await reader.close()
      await database.drop()
    }
  })

  it('runs on the embedded database with no server configured, keeping data in its directory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'overlord-embedded-'))
    try {
      let tracker = await buildTracker({ dataDir, sharedSecret: SECRET })
      let url = await tracker.listen(0)
      const ws = await connectPlugin(url.replace('http', 'ws'))
      await sendFrames(url, ws, [
        telemetry('Embedded', { kills: 1 }),
        telemetry('Embedded', { kills: 4 }),
        { type: 'rare', character_name: 'Embedded', name: 'Gem' },
        { type: 'combat_stats', character_name: 'Embedded', session_id: 's1', stats: { kills: 2 } },
      ])
      await tracker.settle()
      ws.close()
      expect((await getJson(`${url}/live`)).body.players[0]).toMatchObject({
        character_name: 'Embedded',
        total_kills: 3,
        total_rares: 1,
      })
      await tracker.close()

      // Same directory, new process-equivalent: the data is still there.
      tracker = await buildTracker({ dataDir, sharedSecret: SECRET })
      url = await tracker.listen(0)
      expect((await getJson(`${url}/stats/Embedded`)).body.total_kills).toBe(3)
      await tracker.close()
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
