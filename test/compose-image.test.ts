import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { PRIMARY_DATABASE, SHADOW_DATABASE } from '../src/cli/tracker-config.ts'
import type { LedgerEntry } from '../src/compare/ledger.ts'
import { withDatabase } from '../src/db/pool.ts'
import { encodeEnvelopes } from '../src/tee/envelope.ts'
import {
  EXAMPLE_ENV,
  environmentOf,
  healthArgv,
  interpolate,
  isPostgresUrl,
  mountsOf,
  READER,
  ROOT,
  readCompose,
  readEnvFile,
  SHADOW_FILE,
} from './support/compose.ts'
import { type ImageLayout, layOutImage, type Process, runInImage, startInImage } from './support/image.ts'
import { adminQuery, createTestDatabase, freshDatabaseName, TEST_SERVER_URL } from './support/db.ts'
import { connectPlugin, type RunningTracker, sendFrames, startTracker, telemetry } from './support/tracker.ts'
import { freePort, waitFor } from './support/ws-sink.ts'

/**
 * The deployment run for real, without docker: docker/readonly-role.sql on a real PostgreSQL, and
 * the image (laid out from the Dockerfile, support/compose.ts) running the commands, environments
 * and health checks docker-compose.shadow.yml gives it, on a stand-in of the compose network.
 */

const shadow = await readCompose(SHADOW_FILE)
const exampleEnv = await readEnvFile(EXAMPLE_ENV)

/** Runs every cleanup, last first, even after one fails: a role left behind outlives the test run. */
async function undo(cleanups: (() => Promise<unknown>)[]): Promise<void> {
  const errors: unknown[] = []
  for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => errors.push(err))
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed')
}

/** The test server's address, as libpq's environment gives it to psql. */
const server = new URL(TEST_SERVER_URL)
const PG_ENV = {
  PGHOST: server.hostname,
  PGPORT: server.port || '5432',
  PGUSER: decodeURIComponent(server.username || 'postgres'),
  ...(server.password ? { PGPASSWORD: decodeURIComponent(server.password) } : {}),
}

/** Runs `argv` in the checkout with psql's connection variables: its exit code and output. */
async function command(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...PG_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => {
    output += d
  })
  child.stderr.on('data', (d: Buffer) => {
    output += d
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, output }
}

const readonlyRole = (database: string, vars: Record<string, string>) =>
  command(
    [
      'psql',
      '-X',
      '-d',
      database,
      ...Object.entries(vars).flatMap(([k, v]) => ['-v', `${k}=${v}`]),
      '-f',
      'docker/readonly-role.sql',
    ],
    {},
  )

/** The test server's URL of `database`, connecting as `user` (trust auth: no password). */
function urlAs(database: string, user: string): string {
  const url = new URL(withDatabase(TEST_SERVER_URL, database))
  url.username = user
  url.password = ''
  return url.toString()
}

/** SQLSTATEs of three writes as `user` on `database`: a plain INSERT, then a READ WRITE INSERT and CREATE TABLE. */
async function writeAttempts(database: string, user: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: urlAs(database, user) })
  await client.connect()
  const codes: string[] = []
  try {
    for (const sql of [
      "INSERT INTO char_stats (character_name, total_kills) VALUES ('compose-probe', 1)",
      "BEGIN READ WRITE; INSERT INTO char_stats (character_name, total_kills) VALUES ('compose-probe', 1)",
      'BEGIN READ WRITE; CREATE TABLE compose_probe (i int)',
    ]) {
      await client.query(sql).then(
        () => codes.push('ok'),
        (err: { code?: string }) => codes.push(err.code ?? 'error'),
      )
      await client.query('ROLLBACK').catch(() => {})
    }
  } finally {
    await client.end()
  }
  return codes
}

async function countAs(database: string, user: string, table: string): Promise<number> {
  const client = new pg.Client({ connectionString: urlAs(database, user) })
  await client.connect()
  try {
    return Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n)
  } finally {
    await client.end()
  }
}

describe('docker/readonly-role.sql', () => {
  const cleanups: (() => Promise<unknown>)[] = []
  afterAll(async () => {
    await undo(cleanups)
  })

  it('refuses to run without its variables, and fails when PUBLIC could still write through the role', async () => {
    // A clone of the template holds the tracker's tables, as dereth does.
    const { name: database, drop } = await createTestDatabase()
    const reader = `overlord_ro_${randomBytes(4).toString('hex')}`
    cleanups.push(() => adminQuery(`DROP ROLE IF EXISTS ${reader}`))
    cleanups.push(drop)

    const bare = await readonlyRole(database, { reader })
    expect(bare.code).not.toBe(0)
    expect(bare.output).toMatch(/pass -v reader_password/)

    const vars = { reader, reader_password: 'pw', owner: PG_ENV.PGUSER }
    const ok = await readonlyRole(database, vars)
    expect([ok.code, ok.output]).toEqual([0, expect.stringContaining(`${reader} reads ${database}`)])
    expect(await countAs(database, reader, 'telemetry_events')).toBe(0)
    expect(await writeAttempts(database, reader)).toEqual(['25006', '42501', '42501'])

    const admin = new pg.Client({ connectionString: withDatabase(TEST_SERVER_URL, database) })
    await admin.connect()
    await admin.query('GRANT INSERT ON char_stats TO PUBLIC')
    await admin.end()
    const leaky = await readonlyRole(database, vars)
    expect(leaky.code).not.toBe(0)
    expect(leaky.output).toMatch(/can still write public\.char_stats/)
  })
})

/**
 * The compose network as it exists here: each `host:port` the services name, and each container
 * path they read, mapped to what runs in this test; database names and the read-only role too.
 */
interface StandIn {
  addresses: Record<string, string>
  databaseHosts: Record<string, string>
  databases: Record<string, string>
  reader: string
  paths: Record<string, string>
}

function here(value: string, s: StandIn): string {
  if (isPostgresUrl(value)) {
    const url = new URL(value)
    url.host = s.databaseHosts[`${url.hostname}:${url.port || 5432}`] ?? url.host
    url.pathname = `/${s.databases[url.pathname.slice(1)] ?? url.pathname.slice(1)}`
    if (url.username === READER) url.username = s.reader
    return url.toString()
  }
  let out = value
  for (const [from, to] of Object.entries(s.addresses)) out = out.split(from).join(to)
  for (const [from, to] of Object.entries(s.paths))
    if (out === from || out.startsWith(`${from}/`)) out = to + out.slice(from.length)
  return out
}

describe('the image, run as composed', () => {
  const vars: Record<string, string> = {
    ...exampleEnv,
    OVERLORD_TS_DIR: ROOT,
    DASHBOARD_DIR: join(ROOT, 'fixtures/dashboard'),
    BUILD_VERSION: '2026.12.4.2330-abc1234',
  }
  const cleanups: (() => Promise<unknown>)[] = []
  let image: ImageLayout
  beforeAll(async () => {
    const args = interpolate(shadow.services['overlord-ts']!.build?.args ?? {}, vars)
    image = await layOutImage(args)
    cleanups.push(() => rm(image.root, { recursive: true, force: true }))
  })
  afterAll(async () => {
    await undo(cleanups)
  })

  it('feeds the shadow through the tee, sweeps both databases read-only, and its health checks tell', async () => {
    const reader = `overlord_ro_${randomBytes(4).toString('hex')}`
    const shadowDb = freshDatabaseName()
    const reports = await mkdtemp(join(tmpdir(), 'overlord-reports-'))
    cleanups.push(() => adminQuery(`DROP ROLE IF EXISTS ${reader}`))
    cleanups.push(() => rm(reports, { recursive: true, force: true }))
    // The live stack: a tracker on its own database standing in for dereth-tracker and `db`.
    const primary: RunningTracker = await startTracker()
    cleanups.push(() => primary.close())
    const [trackerPort, teePort] = [await freePort(), await freePort()]
    const pgAddress = `${PG_ENV.PGHOST}:${PG_ENV.PGPORT}`
    const stand: StandIn = {
      addresses: {
        'overlord-ts:8766': `127.0.0.1:${trackerPort}`,
        '127.0.0.1:8766': `127.0.0.1:${trackerPort}`,
        'overlord-tee:8770': `127.0.0.1:${teePort}`,
        '127.0.0.1:8770': `127.0.0.1:${teePort}`,
        '0.0.0.0:8770': `127.0.0.1:${teePort}`,
        'dereth-tracker:8765': new URL(primary.url).host,
      },
      databaseHosts: { 'shadow-db:5432': pgAddress, 'db:5432': pgAddress },
      databases: { [SHADOW_DATABASE]: shadowDb, [PRIMARY_DATABASE]: primary.database.name },
      reader,
      paths: { '/reports': reports },
    }
    const service = (name: string) => {
      const s = interpolate(shadow.services[name]!, vars)
      for (const m of mountsOf(s)) if (!m.named) stand.paths[m.target] = m.source
      const env = Object.fromEntries(Object.entries(environmentOf(s)).map(([k, v]) => [k, here(v, stand)]))
      // Its container port is a free one here, on loopback rather than every interface.
      if (env.PORT !== undefined) env.PORT = String(trackerPort)
      if (env.HOST === '0.0.0.0') env.HOST = '127.0.0.1'
      return {
        argv: [...image.entrypoint, ...(s.command ?? image.cmd)].map((a) => here(a, stand)),
        env,
        health: healthArgv(s.healthcheck?.test).map((a) => here(a, stand)),
      }
    }
    const healthy = async (health: string[], env: Record<string, string> = {}) =>
      (await runInImage(image, health, env)).code === 0
    // As docker does: run the health check until it passes; a process that ends has failed.
    const waitHealthy = (name: string, p: Process, health: string[]) =>
      waitFor(`${name} healthy`, async () => {
        if (p.child.exitCode !== null) throw new Error(`${name} exited ${p.child.exitCode}:\n${p.output()}`)
        return healthy(health)
      })

    // shadow-db's first start: dereth_ts exists (POSTGRES_DB), then its init hook runs.
    await adminQuery(`CREATE DATABASE ${shadowDb}`)
    cleanups.push(() => adminQuery(`DROP DATABASE IF EXISTS ${shadowDb} WITH (FORCE)`))
    const started: Process[] = []
    cleanups.push(() => Promise.all(started.map((p) => p.stop())))
    const db = interpolate(shadow.services['shadow-db']!, vars)
    const dbEnv = environmentOf(db)
    const hook = mountsOf(db).find((m) => m.target.startsWith('/docker-entrypoint-initdb.d/'))!
    const init = await command(['sh', hook.source], {
      ...dbEnv,
      POSTGRES_USER: PG_ENV.PGUSER,
      POSTGRES_DB: stand.databases[dbEnv.POSTGRES_DB!]!,
      SHADOW_DB_READONLY_USER: reader,
      OVERLORD_READONLY_SQL: join(ROOT, 'docker/readonly-role.sql'),
    })
    expect([init.code, init.output]).toEqual([0, expect.stringContaining('can write nothing')])
    // The operator's one step on the live database.
    const operator = await readonlyRole(primary.database.name, {
      reader,
      reader_password: vars.LIVE_DB_READONLY_PASSWORD!,
      owner: PG_ENV.PGUSER,
    })
    expect(operator.code).toBe(0)

    const tracker = service('overlord-ts')
    const trackerProcess = startInImage(image, tracker.argv, tracker.env)
    started.push(trackerProcess)
    await waitHealthy('overlord-ts', trackerProcess, tracker.health)
    const shadowUrl = `http://127.0.0.1:${trackerPort}`
    expect(await (await fetch(`${shadowUrl}/api-version`)).json()).toEqual({ version: vars.BUILD_VERSION })
    expect(await (await fetch(`${shadowUrl}/metrics.json`)).json()).toMatchObject({
      role: 'shadow',
      read_only: false,
    })
    // The image's own HEALTHCHECK finds the tracker at $PORT.
    expect(await healthy(image.healthcheck, { PORT: String(trackerPort) })).toBe(true)

    const tee = service('overlord-tee')
    const teeProcess = startInImage(image, tee.argv, tee.env)
    started.push(teeProcess)
    await waitHealthy('overlord-tee', teeProcess, tee.health)

    // One telemetry frame two hours old (a closed parity bucket), to the live tracker and, as the
    // live tracker's legacy/overlord_tee.py would send it, through the tee to the shadow.
    const frame = telemetry('Larsson', { timestamp: new Date(Date.now() - 2 * 3600_000).toISOString() })
    const plugin = await connectPlugin(primary.wsUrl)
    cleanups.push(async () => plugin.close())
    await sendFrames(primary.url, plugin, [frame])
    await primary.tracker.settle()
    const sender = new WebSocket(`ws://127.0.0.1:${teePort}/tee`, {
      headers: { 'X-Tee-Secret': vars.OVERLORD_TEE_SECRET! },
    })
    cleanups.push(async () => sender.close())
    await once(sender, 'open')
    const t = Date.now()
    sender.send(
      encodeEnvelopes([
        { k: 'hello', s: 'compose-test', v: 1 },
        { k: 'open', c: '1', t },
        { k: 'frame', c: '1', t, d: JSON.stringify(frame) },
      ]),
    )
    // Read as the watcher reads: the tracker made these tables after the hook ran.
    await waitFor('the frame in dereth_ts', async () => {
      try {
        return (await countAs(shadowDb, reader, 'telemetry_events')) === 1
      } catch {
        return false
      }
    })
    expect(await writeAttempts(shadowDb, reader)).toEqual(['25006', '42501', '42501'])
    expect(await writeAttempts(primary.database.name, reader)).toEqual(['25006', '42501', '42501'])

    const watch = service('overlord-watch')
    expect(await healthy(watch.health)).toBe(false)
    // One sweep rather than sweeps until cutover, over a 1 s browser-feed window rather than 5 s.
    const oneSweep = ['--duration', '1s', '--ws-window', '1s']
    const watcher = await runInImage(image, [...watch.argv, ...oneSweep], watch.env)
    expect([watcher.code, watcher.output]).toEqual([0, expect.stringContaining('watch ended (duration)')])
    const ledger = (await readFile(join(reports, 'ledger.ndjson'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LedgerEntry)
    expect(ledger.at(-1)).toMatchObject({ errors: 0, database: { withinTolerance: true } })
    expect(await healthy(watch.health)).toBe(true)
    const stale = new Date(Date.now() - 3600_000)
    await utimes(join(reports, 'ledger.ndjson'), stale, stale)
    expect(await healthy(watch.health)).toBe(false)

    expect(await trackerProcess.stop()).toBe(0)
    expect(await healthy(tracker.health)).toBe(false)
  }, 90_000)
})
