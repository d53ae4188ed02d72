import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { registerReplay } from '../src/cli/commands/replay.ts'
import { registerSimulate } from '../src/cli/commands/simulate.ts'
import { registerTee } from '../src/cli/commands/tee.ts'
import { buildProgram } from '../src/cli/program.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { getJson, SECRET, startTracker } from './support/tracker.ts'
import { waitFor } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })

function cli(env: NodeJS.ProcessEnv = {}) {
  const lines: string[] = []
  const program = buildProgram({ env, logger, out: (l) => lines.push(l) }, [
    registerTee,
    registerReplay,
    registerSimulate,
  ])
  program.exitOverride()
  for (const c of program.commands) {
    c.exitOverride()
    for (const sub of c.commands) sub.exitOverride()
  }
  return { lines, run: (args: string[]) => program.parseAsync(args, { from: 'user' }) }
}

describe('CLI: simulate, replay, tee', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  const database = async (): Promise<TestDatabase> => {
    const db = await createTestDatabase()
    cleanups.push(() => db.drop())
    return db
  }

  it('simulate --fixture writes a capture that replay finds equal, with a JSON report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'overlord-cli-'))
    const fixture = join(dir, 'f.ndjson')
    const a = cli()
    const dbA = await database()
    await a.run(
      [
        'simulate',
        '--fixture',
        fixture,
        '--characters',
        '2',
        '--seed',
        '3',
        '--duration',
        '40s',
        '--snapshot-every',
        '20s',
      ].concat(['--database-url', dbA.url]),
    )
    expect(a.lines.at(-1)).toMatch(/^fixture written/)
    const b = cli()
    const dbB = await database()
    const report = join(dir, 'report.json')
    await b.run(['replay', fixture, '--database-url', dbB.url, '--report', report])
    expect(b.lines.at(-1)).toMatch(/^EQUAL /)
    const parsed = JSON.parse(await readFile(report, 'utf8'))
    expect(parsed[fixture].equal).toBe(true)
    expect(parsed[fixture].snapshots).toHaveLength(2)
  })

  it("replay refuses to write into the primary's or the shadow's database", async () => {
    for (const name of ['dereth', 'dereth_ts']) {
      await expect(
        cli().run([
          'replay',
          'fixtures/sim-3chars-seed42.ndjson.gz',
          '--database-url',
          `postgres://127.0.0.1/${name}`,
        ]),
      ).rejects.toMatchObject({ code: 'TRK_ERR_CONFIG' })
    }
  })

  it('simulate --url drives a real tracker live, and tee proxy mirrors into a shadow until --duration', async () => {
    const primary = await startTracker()
    const shadow = await startTracker()
    cleanups.push(
      () => primary.close(),
      () => shadow.close(),
    )
    const tee = cli({ SHADOW_PLUGIN_SECRET: SECRET })
    const running = tee.run([
      'tee',
      'proxy',
      '--listen',
      '127.0.0.1:0',
      '--primary',
      primary.wsUrl,
      '--shadow',
      `${shadow.wsUrl}/ws/position`,
      '--duration',
      '8s',
    ])
    await waitFor('the tee to listen', () => tee.lines.some((l) => l.startsWith('tee proxy listening on ')))
    const teeUrl = (tee.lines.find((l) => l.startsWith('tee proxy listening on ')) as string)
      .split(' ')
      .at(-1) as string

    const sim = cli({ SHARED_SECRET: SECRET })
    await sim.run([
      'simulate',
      '--url',
      teeUrl,
      '--characters',
      '2',
      '--seed',
      '9',
      '--duration',
      '20s',
      '--speed',
      '50',
    ])
    const done = sim.lines.at(-1) as string
    expect(done).toMatch(/^simulate done: /)
    const sent = (JSON.parse(done.slice('simulate done: '.length)) as { frames_sent: number }).frames_sent
    expect(sent).toBeGreaterThan(10)
    await waitFor(
      'the shadow to count every frame',
      async () => (await getJson(`${shadow.url}/metrics.json`)).body.frames_received === sent,
    )
    expect((await getJson(`${primary.url}/metrics.json`)).body.frames_received).toBe(sent)
    await running
  })

  it('capture mirror needs TEE_SECRET', async () => {
    await expect(
      cli().run(['capture', 'mirror', '--out', '/tmp/x.ndjson', '--listen', '127.0.0.1:0']),
    ).rejects.toMatchObject({
      code: 'TRK_ERR_CONFIG',
    })
  })
})
