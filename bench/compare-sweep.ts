/**
 * How long one sweep takes over N live characters (issue 4 §8): two real trackers on two fresh
 * PostgreSQL databases, fed the same telemetry, then full-manifest sweeps timed end to end. The online window is an
 * hour here so the characters stay live however long the sweeps take.
 *
 *   node bench/compare-sweep.ts [characters=1000] [sweeps=5]
 */
import { once } from 'node:events'
import pg from 'pg'
import pino from 'pino'
import WebSocket from 'ws'
import { loadManifest } from '../src/compare/manifest.ts'
import { BackendClient } from '../src/compare/poller.ts'
import { loadRules } from '../src/compare/rules.ts'
import { runSweep } from '../src/compare/sweep.ts'
import { ensureDatabase, withDatabase } from '../src/db/pool.ts'
import { buildTracker } from '../src/tracker/build-tracker.ts'

const SERVER = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const characters = Number(process.argv[2] ?? 1000)
const sweeps = Number(process.argv[3] ?? 5)
const SECRET = 'bench'
const logger = pino({ level: 'silent' })

async function start(name: string) {
  const admin = new pg.Client({ connectionString: SERVER })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.end()
  await ensureDatabase(SERVER, name)
  const tracker = await buildTracker({
    databaseUrl: withDatabase(SERVER, name),
    sharedSecret: SECRET,
    logger,
    activeWindowMs: 3_600_000,
  })
  const url = await tracker.listen(0, '127.0.0.1')
  return { tracker, url, name }
}

const primary = await start('overlord_bench_primary')
const shadow = await start('overlord_bench_shadow')
const now = new Date().toISOString()
for (const side of [primary, shadow]) {
  const ws = new WebSocket(`${side.url.replace('http', 'ws')}/ws/position`, {
    headers: { 'X-Plugin-Secret': SECRET },
  })
  await once(ws, 'open')
  for (let i = 0; i < characters; i++) {
    ws.send(
      JSON.stringify({
        type: 'telemetry',
        character_name: `Char ${String(i).padStart(4, '0')}`,
        session_id: 's1',
        timestamp: now,
        ew: i / 7,
        ns: -i / 3,
        z: 0,
        kills: i,
        kills_per_hour: '340.5',
        deaths: '1',
        total_deaths: '3',
        rares_found: 0,
        prismatic_taper_count: '57',
        vt_state: 'Combat',
        onlinetime: '00:10:00',
      }),
    )
  }
  for (;;) {
    if ((side.tracker.metrics().frames_received as number) >= characters) break
    await new Promise((r) => setTimeout(r, 20))
  }
  ws.close()
  await side.tracker.settle()
}

const rules = await loadRules('compare/rules.json', 'compare/waivers.json')
const manifest = await loadManifest('compare/endpoints.json')
const p = new BackendClient({ side: 'primary', url: primary.url, logger })
const s = new BackendClient({ side: 'shadow', url: shadow.url, logger })
const times: number[] = []
for (let i = 0; i < sweeps; i++) {
  const t = performance.now()
  const result = await runSweep({ primary: p, shadow: s, rules, manifest, logger })
  times.push(performance.now() - t)
  console.log(
    `sweep ${i + 1}: ${result.verdict}, ${result.characters} characters, ${result.requests} requests, ${(performance.now() - t).toFixed(0)} ms`,
  )
}
times.sort((a, b) => a - b)
console.log(
  `${characters} characters, ${sweeps} sweeps: median ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms`,
)
await Promise.all([p.close(), s.close()])
for (const side of [primary, shadow]) await side.tracker.close()
const admin = new pg.Client({ connectionString: SERVER })
await admin.connect()
for (const side of [primary, shadow]) await admin.query(`DROP DATABASE IF EXISTS ${side.name} WITH (FORCE)`)
await admin.end()
