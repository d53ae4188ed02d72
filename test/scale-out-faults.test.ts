import http from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { overlord } from './support/cli.ts'
import { createTestDatabase, sql } from './support/db.ts'
import { destroyBus, NATS_URL, startOwnNats, uniqueBusName } from './support/nats.ts'
import { startPluginFleet } from './support/plugin-fleet.ts'
import { connectBrowser, connectPlugin, SECRET, telemetry } from './support/tracker.ts'
import { spawnTracker } from './support/tracker-process.ts'
import { freePort, waitFor } from './support/ws-sink.ts'

/** `/metrics.json` over a fresh connection: with `--workers`, each connection may reach another worker. */
function metricsOnce(url: string): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/metrics.json`, { agent: false }, (res) => {
        let body = ''
        res.on('data', (d) => {
          body += d
        })
        res.on('end', () => resolve(JSON.parse(body)))
      })
      .on('error', reject)
  })
}

/** The metrics of every worker behind one port, by pid (round-robin hands out connections in turn). */
async function workerMetrics(url: string, workers: number): Promise<Map<number, Record<string, any>>> {
  const seen = new Map<number, Record<string, any>>()
  for (let i = 0; i < workers * 20 && seen.size < workers; i++) {
    const m = await metricsOnce(url)
    seen.set(m.pid, m)
  }
  return seen
}

/** A browser that reconnects when its socket closes, and records every frame it ever got. */
function reconnectingBrowser(wsUrl: string) {
  const state = {
    messages: [] as Record<string, any>[],
    connects: 0,
    closedAt: [] as number[],
    stopped: false,
  }
  let current: Awaited<ReturnType<typeof connectBrowser>> | undefined
  const open = async (): Promise<void> => {
    if (state.stopped) return
    try {
      current = await connectBrowser(wsUrl)
    } catch {
      setTimeout(() => void open(), 100)
      return
    }
    state.connects += 1
    const mine = current
    mine.ws.on('message', (d) => state.messages.push(JSON.parse(String(d))))
    mine.ws.on('close', () => {
      state.closedAt.push(Date.now())
      setTimeout(() => void open(), 100)
    })
  }
  return {
    state,
    ready: open(),
    stop() {
      state.stopped = true
      current?.ws.close()
    },
  }
}

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

describe('scale-out faults', () => {
  it('serve --workers 3: the writer worker killed under load loses no frame it accepted, writes none twice, and the rest carry on', async () => {
    const db = await createTestDatabase()
    const bus = uniqueBusName()
    cleanups.push(
      () => db.drop(),
      () => destroyBus(bus),
    )
    const tracker = await spawnTracker(
      { DATABASE_URL: db.url, SKIP_SCHEMA_INIT: '1', SHARED_SECRET: SECRET, NATS_URL, NATS_NAME: bus },
      { args: ['--workers', '3'] },
    )
    cleanups.push(() => tracker.stop())
    // The first worker answers as soon as it listens; the other two start after it.
    await waitFor('three workers', async () => (await workerMetrics(tracker.url, 3)).size === 3, 30_000)

    const browsers = Array.from({ length: 6 }, () => reconnectingBrowser(tracker.wsUrl))
    await Promise.all(browsers.map((b) => b.ready))
    cleanups.push(async () => {
      for (const b of browsers) b.stop()
    })
    const characters = ['Ash', 'Birch', 'Cedar', 'Dogwood', 'Elm', 'Fir']
    const fleet = startPluginFleet({
      url: `${tracker.wsUrl}/ws/position`,
      secret: SECRET,
      characters,
      intervalMs: 25,
      startMs: Date.UTC(2026, 11, 5, 12),
      reconnectMs: 100,
    })
    cleanups.push(() => fleet.stop())
    await new Promise((r) => setTimeout(r, 2_000))

    // The worker holding the writer lease, which also holds some plugins and browsers.
    let writer: Record<string, any> | undefined
    await waitFor('the writer worker', async () => {
      writer = [...(await workerMetrics(tracker.url, 3)).values()].find((m) => m.bus.writer_leader)
      return writer !== undefined && writer.plugin_connections > 0 && writer.browsers > 0
    })
    const killedAt = Date.now()
    process.kill(writer!.pid, 'SIGKILL')

    // Its browsers come back through the same port to another worker and the feed resumes.
    await waitFor(
      'browsers back',
      () =>
        browsers.some((b) => b.state.closedAt.length > 0) &&
        browsers.every((b) => b.state.closedAt.length === b.state.connects - 1),
    )
    const cut = browsers.filter((b) => b.state.closedAt.length > 0)
    expect(cut.length).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 3_000))
    await fleet.stop()
    for (const b of cut) {
      const after = b.state.messages.filter(
        (m) => m.character_name !== undefined && Date.parse(m.timestamp ?? '') > 0,
      )
      expect(after.length).toBeGreaterThan(0)
    }

    // The supervisor started a replacement, and the others never lost their browsers.
    await waitFor('three workers again', async () => (await workerMetrics(tracker.url, 3)).size === 3, 20_000)
    const untouched = browsers.filter((b) => b.state.closedAt.length === 0)
    expect(untouched.length).toBeGreaterThan(0)

    const sent = characters.flatMap((c) => fleet.log.get(c)!.sent)
    const key = (c: string, ts: string) => `${c} ${new Date(ts).toISOString()}`
    const rowsNow = async () =>
      sql<{ character_name: string; ts: string; n: number }>(
        db.url,
        `SELECT character_name, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts,
                count(*)::int AS n
           FROM telemetry_events GROUP BY 1, 2`,
      )
    // Every frame a browser on a surviving worker saw was on the bus: it must reach the database.
    const seenByOthers = new Set(
      untouched.flatMap((b) =>
        b.state.messages
          .filter((m) => m.character_name !== undefined && m.type === undefined)
          .map((m) => key(m.character_name, m.timestamp)),
      ),
    )
    await waitFor(
      'every accepted frame written',
      async () => {
        const stored = new Set((await rowsNow()).map((r) => key(r.character_name, r.ts)))
        return [...seenByOthers].every((k) => stored.has(k))
      },
      60_000,
    )
    const rows = await rowsNow()
    const stored = new Set(rows.map((r) => key(r.character_name, r.ts)))
    expect(rows.filter((r) => r.n > 1)).toEqual([])
    // Frames sent more than half a second before the kill had long been accepted and stored on the bus.
    const early = sent.filter((f) => f.sentAt < killedAt - 500)
    expect(early.filter((f) => !stored.has(key(f.character, f.timestamp)))).toEqual([])
    // Frames sent after it went to the surviving workers.
    const late = sent.filter((f) => f.sentAt > killedAt + 1_000)
    expect(late.length).toBeGreaterThan(0)
    expect(late.filter((f) => !stored.has(key(f.character, f.timestamp)))).toEqual([])
    const lost = sent.filter((f) => !stored.has(key(f.character, f.timestamp)))
    console.log(
      `workers 3: ${sent.length} frames sent, ${rows.length} rows, ${lost.length} not stored (sent to the killed worker within 0.5 s of its death), ${cut.length} of 6 browsers reconnected`,
    )
  }, 120_000)

  it('NATS restarted: instances reconnect and catch up; frames accepted meanwhile reach the other instance and the database', async () => {
    const nats = await startOwnNats()
    cleanups.push(() => nats.close())
    const db = await createTestDatabase()
    cleanups.push(() => db.drop())
    const env = {
      DATABASE_URL: db.url,
      SKIP_SCHEMA_INIT: '1',
      SHARED_SECRET: SECRET,
      NATS_URL: nats.url,
      NATS_NAME: 'restart',
    }
    const a = await spawnTracker(env, { args: ['--workers', '1'] })
    const b = await spawnTracker(env, { args: ['--workers', '1'] })
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    )
    const onB = await connectBrowser(b.wsUrl)
    const plugin = await connectPlugin(a.wsUrl)
    const send = (kills: number) =>
      plugin.send(
        JSON.stringify(
          telemetry('Gale', { kills, timestamp: new Date(Date.UTC(2026, 11, 5, 0, 0, kills)).toISOString() }),
        ),
      )
    for (let k = 1; k <= 5; k++) send(k)
    await waitFor(
      'before the restart',
      () => onB.messages.filter((m) => m.character_name === 'Gale').length === 5,
    )

    await nats.stop()
    await waitFor('A sees the bus gone', async () => (await metricsOnce(a.url)).bus.connected === false)
    for (let k = 6; k <= 25; k++) send(k)
    await waitFor('A accepted them', async () => (await metricsOnce(a.url)).frames_accepted === 25)
    const during = await metricsOnce(a.url)
    expect(during.bus.publish_in_flight).toBe(20)
    await new Promise((r) => setTimeout(r, 1_000))
    await nats.start()

    await waitFor(
      'B caught up',
      () => onB.messages.filter((m) => m.character_name === 'Gale').length === 25,
      30_000,
    )
    expect(onB.messages.filter((m) => m.character_name === 'Gale').map((m) => m.kills)).toEqual(
      Array.from({ length: 25 }, (_, i) => i + 1),
    )
    await waitFor(
      'all written once',
      async () => (await sql(db.url, 'SELECT count(*)::int AS n FROM telemetry_events'))[0]!.n >= 25,
      30_000,
    )
    const [counts] = await sql(
      db.url,
      `SELECT count(*)::int AS rows, count(DISTINCT timestamp)::int AS distinct_frames,
              (SELECT total_kills::int FROM char_stats WHERE character_name = 'Gale') AS kills FROM telemetry_events`,
    )
    expect(counts).toEqual({ rows: 25, distinct_frames: 25, kills: 24 })
    const after = await metricsOnce(a.url)
    expect(after.bus).toMatchObject({ connected: true, publish_in_flight: 0, unstored_frames: 0 })
    expect(after.bus.reconnects).toBeGreaterThan(0)
    plugin.close()
    onB.ws.close()
  }, 120_000)

  it('NATS down at start-up: one clear line and a non-zero exit', async () => {
    const port = await freePort()
    const db = await createTestDatabase()
    cleanups.push(() => db.drop())
    const run = await overlord(['serve', '--port', String(await freePort())], {
      DATABASE_URL: db.url,
      SKIP_SCHEMA_INIT: '1',
      SHARED_SECRET: SECRET,
      NATS_URL: `nats://127.0.0.1:${port}`,
    })
    expect(run.code).toBe(2)
    expect(run.stderr).toHaveLength(1)
    expect(run.stderr[0]).toMatch(
      new RegExp(`^overlord-ts: NATS at nats://127.0.0.1:${port} is not reachable`),
    )
  }, 30_000)

  it('--workers 2 without NATS_URL is refused in one line', async () => {
    const run = await overlord(['serve', '--workers', '2', '--port', String(await freePort())], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/unused',
    })
    expect(run.code).toBe(2)
    expect(run.stderr).toEqual([
      'overlord-ts: --workers 2 needs NATS_URL: the workers share the fleet\'s state over NATS (README "Scale-out")',
    ])
  })
})
