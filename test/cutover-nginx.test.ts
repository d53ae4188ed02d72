import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sameJson } from '../src/compare/equality.ts'
import { runCommand } from '../src/cutover/switch.ts'
import { withDatabase } from '../src/db/pool.ts'
import { buildTracker, type Tracker } from '../src/tracker/build-tracker.ts'
import { overlord } from './support/cli.ts'
import { adminQuery, freshDatabaseName, TEST_SERVER_URL, sql } from './support/db.ts'
import { NGINX, writeSandboxNginxConf } from './support/nginx.ts'
import { type PluginFleet, startPluginFleet } from './support/plugin-fleet.ts'
import { findPython } from './support/python.ts'
import { freePort } from './support/ws-sink.ts'

/**
 * Issue 10 §2, in a real nginx and PostgreSQL with the Python tracker as the first primary: plugins
 * connected through nginx keep sending while `cutover flip` makes the TypeScript tracker the
 * primary and `cutover rollback` makes Python the primary again, each one command. Then every
 * frame sent is counted against the rows in the database, and what the TypeScript tracker wrote is
 * read back through both trackers.
 */

const SECRET = 'cutover-test-secret'
const CHARACTERS = ['Aldo', 'Bérénice', 'Cyrus', 'Dagny', 'Eskil', 'Fjola']
const INTERVAL_MS = 100

async function json(url: string): Promise<unknown> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json()
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

describe('cutover flip and rollback under a fleet, through nginx', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlord-cutover-'))
  const database = freshDatabaseName()
  const dbUrl = withDatabase(TEST_SERVER_URL, database)
  const reports = join(dir, 'reports')
  const include = join(dir, 'dereth-live.conf')
  const nginxConf = join(dir, 'nginx.conf')
  const nginxArgs = `-c ${nginxConf} -p ${dir}`
  let pythonPort = 0
  let trackerPort = 0
  let nginxUrl = ''
  let startPython = ''
  const pidOf = (name: string) => Number(readFileSync(join(dir, `${name}.pid`), 'utf8'))
  const stopCommand = (name: string) =>
    `kill -TERM $(cat ${dir}/${name}.pid); while kill -0 $(cat ${dir}/${name}.pid) 2>/dev/null; do sleep 0.1; done`

  beforeAll(async () => {
    await adminQuery(`CREATE DATABASE ${database}`)
    ;[pythonPort, trackerPort] = [await freePort(), await freePort()]
    const nginxPort = await freePort()
    const python = findPython(['fastapi', 'uvicorn', 'asyncpg'])
    // Started by shell commands, as an operator's service manager would: the rollback restarts it.
    startPython = `DATABASE_URL=${dbUrl} SHARED_SECRET=${SECRET} TZ=UTC ${python} test/python/legacy_tracker.py --port ${pythonPort} --host 127.0.0.1 >> ${dir}/python.log 2>&1 & echo $! > ${dir}/python.pid`
    writeFileSync(join(dir, 'start-python.sh'), startPython)
    const started = await overlordShell(startPython)
    expect(started).toBe(0)
    await until(
      'the Python tracker',
      20_000,
      async () => (await fetch(`http://127.0.0.1:${pythonPort}/health`)).ok,
    )

    // The shipped include, as installed before the cutover: the live paths go to Python.
    writeFileSync(
      include,
      readFileSync('nginx/live-upstream.conf', 'utf8').replace('127.0.0.1:8765', `127.0.0.1:${pythonPort}`),
    )
    writeSandboxNginxConf({
      dir,
      port: nginxPort,
      http: [include],
      server: [`${process.cwd()}/nginx/live-locations.conf`],
    })
    expect(await overlordShell(`${NGINX} ${nginxArgs}`)).toBe(0)
    nginxUrl = `http://127.0.0.1:${nginxPort}`
    await until('nginx', 10_000, async () => (await fetch(`${nginxUrl}/api-version`)).ok)
  }, 60_000)

  afterAll(async () => {
    for (const name of ['python', 'tracker']) {
      try {
        process.kill(pidOf(name), 'SIGKILL')
      } catch {
        // not running
      }
    }
    if (existsSync(join(dir, 'nginx.pid'))) await overlordShell(`${NGINX} ${nginxArgs} -s quit`)
    await sleep(200)
    await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    rmSync(dir, { recursive: true, force: true })
  })

  const switchArgs = () => [
    '--nginx-include',
    include,
    '--primary',
    `http://127.0.0.1:${pythonPort}`,
    '--tracker',
    `http://127.0.0.1:${trackerPort}`,
    '--database',
    database,
    '--nginx-test',
    `${NGINX} -t -q ${nginxArgs}`,
    '--nginx-reload',
    `${NGINX} ${nginxArgs} -s reload`,
    '--reports',
    reports,
    '--by',
    'ci-operator',
  ]
  const pluginsOn = async (port: number) =>
    ((await json(`http://127.0.0.1:${port}/metrics.json`)) as { plugin_connections: number })
      .plugin_connections

  it('loses nothing beyond frames in flight, duplicates nothing, and Python serves what TypeScript wrote', async () => {
    const fleet: PluginFleet = startPluginFleet({
      url: `${nginxUrl.replace('http', 'ws')}/ws/position`,
      secret: SECRET,
      characters: CHARACTERS,
      intervalMs: INTERVAL_MS,
      startMs: Date.now(),
    })
    await until(
      'the fleet on Python',
      10_000,
      async () => (await pluginsOn(pythonPort)) === CHARACTERS.length,
    )
    await sleep(2_000)

    // Flip: the gate has no evidence here, so it is forced, and that is recorded.
    const startTracker = `TRACKER_ROLE=primary DATABASE_URL=${dbUrl} SHARED_SECRET=${SECRET} PORT=${trackerPort} LOG_LEVEL=warn ${process.execPath} src/cli/main.ts serve >> ${dir}/tracker.log 2>&1 & echo $! > ${dir}/tracker.pid`
    const flipped = await overlord(
      [
        'cutover',
        'flip',
        ...switchArgs(),
        '--reason',
        'gate green for a day',
        '--force',
        '--start-tracker',
        startTracker,
      ],
      { PATH: process.env.PATH ?? '' },
    )
    expect(flipped.stderr).toEqual([])
    expect(flipped.code).toBe(0)
    expect(flipped.stdout).toContain(
      `flipped: the live paths go to the TypeScript tracker at 127.0.0.1:${trackerPort}`,
    )
    const flipAt = Date.now()
    // The plugins reconnect by themselves once nginx's old worker closes their sockets.
    await until(
      'the fleet on the TypeScript tracker',
      15_000,
      async () => (await pluginsOn(trackerPort)) === CHARACTERS.length,
    )
    expect(await pluginsOn(pythonPort)).toBe(0)
    await sleep(3_000)

    const rolledBack = await overlord(
      [
        'cutover',
        'rollback',
        ...switchArgs(),
        '--reason',
        'drill',
        '--restart-primary',
        `${stopCommand('python')}; ${startPython}`,
        '--stop-tracker',
        stopCommand('tracker'),
      ],
      { PATH: process.env.PATH ?? '' },
    )
    expect(rolledBack.stderr).toEqual([])
    expect(rolledBack.code).toBe(0)
    const rollbackAt = Date.now()
    await until(
      'the fleet back on Python',
      15_000,
      async () => (await pluginsOn(pythonPort)) === CHARACTERS.length,
    )
    await sleep(1_500)
    await fleet.stop()
    await until('Python to handle every frame', 15_000, async () => {
      const m = (await json(`http://127.0.0.1:${pythonPort}/metrics.json`)) as Record<string, number>
      return m.frames_handled === m.frames_received
    })

    // Frames sent vs rows: no duplicates; a missing frame was sent into a socket that closed soon after.
    const rows = await sql<{ character_name: string; ts: string; n: number }>(
      dbUrl,
      `SELECT character_name, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts, count(*)::int AS n
       FROM telemetry_events GROUP BY 1, 2`,
    )
    expect(rows.filter((r) => r.n > 1)).toEqual([])
    const stored = new Set(rows.map((r) => `${r.character_name}|${r.ts}`))
    let sent = 0
    const lost: { character: string; timestamp: string; beforeClose: number | undefined }[] = []
    for (const [character, log] of fleet.log) {
      // Each plugin connected at least three times (start, flip, rollback) with nobody's help.
      expect(log.connects, character).toBeGreaterThanOrEqual(3)
      for (const f of log.sent) {
        sent += 1
        if (stored.has(`${character}|${f.timestamp}`)) continue
        const closed = log.closedAt.get(f.connection)
        lost.push({
          character,
          timestamp: f.timestamp,
          beforeClose: closed === undefined ? undefined : closed - f.sentAt,
        })
      }
    }
    expect(rows.length).toBe(sent - lost.length)
    // In flight: every lost frame went into a connection that nginx closed within the next 3 s.
    for (const l of lost) expect(l.beforeClose, JSON.stringify(l)).toBeLessThan(3_000)
    expect(lost.length).toBeLessThan(sent * 0.05)

    // The TypeScript tracker wrote while it was primary.
    const [written] = await sql<{ n: number }>(
      dbUrl,
      'SELECT count(*)::int AS n FROM telemetry_events WHERE received_at > to_timestamp($1 / 1000.0) AND received_at < to_timestamp($2 / 1000.0)',
      [flipAt + 500, rollbackAt - 500],
    )
    expect(written!.n).toBeGreaterThan(CHARACTERS.length * 10)

    // No double counting: Python restarted at the rollback, so its kill baselines are not from before the flip.
    const totals = await sql<{ character_name: string; total_kills: string }>(
      dbUrl,
      'SELECT * FROM char_stats',
    )
    for (const [character, log] of fleet.log) {
      const kills = log.sent.map((f) => f.kills)
      const span = Math.max(...kills) - Math.min(...kills)
      const total = Number(totals.find((t) => t.character_name === character)?.total_kills ?? 0)
      expect(total, character).toBeLessThanOrEqual(span)
      // Each change of writer starts that character's count afresh from its next frame (CONTRACT §6).
      expect(total, character).toBeGreaterThan(span - 60)
    }

    // No gap on rollback: Python reads back what TypeScript wrote as TypeScript does.
    const reader: Tracker = await buildTracker({ databaseUrl: dbUrl, readOnly: true })
    try {
      const ts = await reader.listen(0)
      const py = `http://127.0.0.1:${pythonPort}`
      const from = new Date(flipAt - 60_000).toISOString()
      const to = new Date().toISOString()
      const paths = [
        '/trails?seconds=600',
        ...CHARACTERS.flatMap((c) => {
          const n = encodeURIComponent(c)
          return [
            `/history?character=${n}&from=${from}&to=${to}`,
            `/stats/${n}`,
            `/combat-stats/${n}`,
            `/character-stats/${n}`,
          ]
        }),
      ]
      for (const path of paths) {
        const [a, b] = [await json(`${py}${path}`), await json(`${ts}${path}`)]
        // Each read holds what the fleet wrote, or the comparison would prove nothing.
        expect(JSON.stringify(a), path).toMatch(/"kills":\d|"level":275|"trails":\[\{/)
        expect(
          sameJson(a, b),
          `${path}\npython: ${JSON.stringify(a).slice(0, 400)}\ntypescript: ${JSON.stringify(b).slice(0, 400)}`,
        ).toBe(true)
      }
    } finally {
      await reader.close()
    }

    // Who, when and why, in the ledger; and the gate still reads it.
    const events = readFileSync(join(reports, 'ledger.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(events).toMatchObject([
      {
        kind: 'cutover',
        action: 'flip',
        by: 'ci-operator',
        reason: 'gate green for a day',
        forced: true,
        to: `127.0.0.1:${trackerPort}`,
        tracker: { role: 'primary', database },
      },
      {
        kind: 'cutover',
        action: 'rollback',
        by: 'ci-operator',
        reason: 'drill',
        to: `127.0.0.1:${pythonPort}`,
      },
    ])
    const status = await overlord(['cutover', 'status', '--reports', reports], {
      PATH: process.env.PATH ?? '',
    })
    expect(status.stdout).toMatch(/^cutover: NO-GO — 0 of the 1 000 sweeps required/)
    // And says where the live paths go since the last switch.
    expect(status.stdout).toMatch(
      new RegExp(
        `\\nlive paths: the Python tracker at 127\\.0\\.0\\.1:${pythonPort} since \\S+ \\(rollback by ci-operator: drill\\)\\n`,
      ),
    )
  }, 120_000)
})

/** Runs a shell line (backgrounded services detach); resolves its exit code. */
async function overlordShell(line: string): Promise<number | null> {
  return (await runCommand(line)).code
}
