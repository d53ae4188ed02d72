import { type CliRun, overlord } from './support/cli.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, type ExpectStatic, it } from 'vitest'
import { createTestDatabase } from './support/db.ts'
import { SECRET } from './support/tracker.ts'

function expectOneHumanLine(expect: ExpectStatic, run: CliRun, line: string | RegExp): void {
  expect(run.stderr, run.stderr.join('\n')).toHaveLength(1)
  expect(run.stderr[0]).toMatch(line)
  expect(run.stderr[0]).not.toMatch(/^\s*\{|\n|^\s+at /)
}

let reports: string
beforeAll(async () => {
  reports = await mkdtemp(join(tmpdir(), 'overlord-cli-errors-'))
})
afterAll(() => rm(reports, { recursive: true, force: true }))

describe('serve: a port in use', () => {
  it('exits 2 with one line naming the port (was: logged EADDRINUSE and kept running)', async ({
    expect,
  }) => {
    const holder = net.createServer()
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
    const { port } = holder.address() as net.AddressInfo
    const database = await createTestDatabase()
    try {
      // Exiting on its own at all shows the tracker it built was closed: its pool and timers
      // would otherwise keep the process running.
      const run = await overlord(['serve'], {
        DATABASE_URL: database.url,
        SKIP_SCHEMA_INIT: 'true',
        SHARED_SECRET: SECRET,
        PORT: String(port),
      })
      expect(run.code).toBe(2)
      expectOneHumanLine(
        expect,
        run,
        `overlord-ts: port ${port} on 127.0.0.1 is already in use (PORT/--port)`,
      )
    } finally {
      holder.close()
      await database.drop()
    }
  })
})

// Each case is its own process: run them side by side.
describe.concurrent('a mistake is one human line on stderr, exit 2', () => {
  it("serve refusing to write into the primary's database", async ({ expect }) => {
    const run = await overlord(['serve'], { DATABASE_URL: 'postgres://127.0.0.1/dereth' })
    expect(run.code).toBe(2)
    expectOneHumanLine(expect, run, /^overlord-ts: refusing to write into the primary's database "dereth"/)
    expect(run.stdout).toBe('')
  })

  it('serve with an unreachable database server', async ({ expect }) => {
    const run = await overlord(['serve'], { DATABASE_URL: 'postgres://127.0.0.1:9/scratch' })
    expect(run.code).toBe(2)
    expectOneHumanLine(expect, run, /^overlord-ts: .*ECONNREFUSED 127\.0\.0\.1:9$/)
  })

  it('watch with a bad --interval, before any backend is read', async ({ expect }) => {
    const backends = ['--primary', 'http://127.0.0.1:9', '--shadow', 'http://127.0.0.1:9']
    const run = await overlord(['watch', ...backends, '--reports', reports, '--interval', 'soon'])
    expect(run.code).toBe(2)
    expectOneHumanLine(expect, run, 'overlord-ts: bad duration: soon (use 500ms, 10s, 5m, 1h or 2d)')
  })

  it('sweep with a rules file that does not exist', async ({ expect }) => {
    const missing = join(reports, 'no-such-rules.json')
    const backends = ['--primary', 'http://127.0.0.1:9', '--shadow', 'http://127.0.0.1:9']
    const run = await overlord(['sweep', ...backends, '--reports', reports, '--rules', missing])
    expect(run.code).toBe(2)
    expectOneHumanLine(
      expect,
      run,
      `overlord-ts: cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'`,
    )
  })

  it('replay of a capture that does not exist', async ({ expect }) => {
    const run = await overlord(['replay', join(reports, 'gone.ndjson')])
    expect(run.code).toBe(2)
    expectOneHumanLine(expect, run, /^overlord-ts: ENOENT: no such file or directory/)
  })

  it('a usage error keeps its short hint, and exits 2 rather than 1 (mismatch)', async ({ expect }) => {
    const run = await overlord(['sweep', '--interval', '5s'])
    expect(run.code).toBe(2)
    expect(run.stderr).toEqual(["overlord-ts: error: unknown option '--interval'", '(add --help for usage)'])
  })
})

describe.concurrent('a verdict is its line alone', () => {
  it('cutover status on an empty reports directory: NO-GO, exit 1, no usage hint', async ({ expect }) => {
    const run = await overlord(['cutover', 'status', '--reports', reports])
    expect(run.code).toBe(1)
    expect(run.stderr).toEqual(['cutover: NO-GO'])
    expect(run.stdout).toMatch(/^cutover: NO-GO/)
  })

  it('sweep against backends that cannot be reached: ERROR, exit 2, no usage hint', async ({ expect }) => {
    const backends = ['--primary', 'http://127.0.0.1:9', '--shadow', 'http://127.0.0.1:9']
    const run = await overlord(['sweep', ...backends, '--reports', reports])
    expect(run.code).toBe(2)
    expect(run.stderr).toEqual(['parity: ERROR (a backend could not be read)'])
  })
})
