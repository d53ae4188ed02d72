import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { overlord } from './support/cli.ts'
import { connectPlugin, type RunningTracker, sendFrames, startTracker, telemetry } from './support/tracker.ts'

/**
 * What `cutover flip` and `rollback` refuse, and what they leave behind when they do: the include
 * nginx reads is as it was, and nothing is recorded as done. (The switch itself, in a real nginx
 * with a fleet sending, is test/cutover-nginx.test.ts.)
 */

const ORIGINAL = 'upstream dereth_live {\n    server 127.0.0.1:8765;\n}\n'

describe('cutover flip and rollback refusals', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlord-cutover-cli-'))
  const include = join(dir, 'live.conf')
  const reports = join(dir, 'reports')
  let shadow: RunningTracker
  let primaryRole: RunningTracker

  beforeAll(async () => {
    shadow = await startTracker()
    primaryRole = await startTracker({ role: 'primary' })
  })
  afterAll(async () => {
    await shadow.close()
    await primaryRole.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** `cutover <action>` with a reason and no-op nginx commands; later options override these. */
  const run = (action: string, ...args: string[]) => {
    writeFileSync(include, ORIGINAL)
    const defaults = ['--reason', 'x', '--nginx-test', 'true', '--nginx-reload', 'true']
    return overlord([
      'cutover',
      action,
      '--nginx-include',
      include,
      '--reports',
      reports,
      '--by',
      'ops',
      ...defaults,
      ...args,
    ])
  }
  const untouched = () => expect(readFileSync(include, 'utf8')).toBe(ORIGINAL)
  const ledger = () => {
    try {
      return readFileSync(join(reports, 'ledger.ndjson'), 'utf8')
    } catch {
      return ''
    }
  }

  it('flip refuses a NO-GO gate unless forced', async () => {
    const r = await run('flip', '--tracker', primaryRole.url)
    expect(r.code).toBe(1)
    expect(r.stderr).toEqual(['cutover refused: the gate says NO-GO (use --force to override, recorded)'])
    untouched()
    expect(ledger()).toBe('')
  })

  it('flip refuses a tracker in the shadow role, naming the fix', async () => {
    const r = await run('flip', '--force', '--tracker', shadow.url)
    expect(r.code).toBe(2)
    expect(r.stderr).toEqual([
      `overlord-ts: cutover refused: the tracker at ${shadow.url} runs in the shadow role; start it with TRACKER_ROLE=primary`,
    ])
    untouched()
  })

  it('flip refuses a primary-role tracker writing another database than named', async () => {
    const r = await run('flip', '--force', '--tracker', primaryRole.url)
    expect(r.code).toBe(2)
    expect(r.stderr[0]).toBe(
      `overlord-ts: cutover refused: the tracker at ${primaryRole.url} writes "${primaryRole.database.name}", not "dereth" (--database)`,
    )
    untouched()
  })

  it('flip puts the include back when nginx rejects the new configuration', async () => {
    const r = await run(
      'flip',
      '--force',
      '--tracker',
      primaryRole.url,
      '--database',
      primaryRole.database.name,
      '--nginx-test',
      'echo "nginx: [emerg] host not found in upstream" >&2; exit 1',
      '--nginx-reload',
      'echo reload must not run >&2; exit 1',
    )
    expect(r.code).toBe(2)
    expect(r.stderr).toEqual([
      'overlord-ts: nginx test failed (echo "nginx: [emerg] host not found in upstream" >&2; exit 1): nginx: [emerg] host not found in upstream',
    ])
    untouched()
    expect(ledger()).toBe('')
  })

  it('flip refuses a tracker that has already taken plugin frames (stale kill counts) unless forced', async () => {
    const ws = await connectPlugin(primaryRole.wsUrl)
    await sendFrames(primaryRole.url, ws, [telemetry('Larsson')])
    ws.close()
    // A gate that says GO on one clean sweep, so that this check is the one that speaks.
    const criteria = join(dir, 'lenient.json')
    writeFileSync(criteria, JSON.stringify({ minSweeps: 1, requireDatabase: false }))
    const goReports = join(dir, 'go-reports')
    mkdirSync(goReports)
    const clean = {
      name: 'live',
      clean: true,
      mismatches: 0,
      hard: 0,
      noise: 0,
      explained: 0,
      errors: 0,
      clusters: [],
    }
    writeFileSync(
      join(goReports, 'ledger.ndjson'),
      `${JSON.stringify({ id: 's1', startedAt: new Date().toISOString(), durationMs: 1, verdict: 'parity', characters: 1, requests: 1, lagMs: { p50: 0, p95: 0, max: 0 }, endpoints: [clean], errors: 0, waived: {} })}\n`,
    )
    const args = ['--reports', goReports, '--criteria', criteria, '--tracker', primaryRole.url]
    args.push('--database', primaryRole.database.name)
    const refused = await run('flip', ...args)
    expect(refused.stderr).toEqual([
      `overlord-ts: cutover refused: the tracker at ${primaryRole.url} has taken 1 plugin frames since it started; restart it so its kill counts start fresh (or --force)`,
    ])
    untouched()
    const forced = await run('flip', ...args, '--force')
    expect(forced.code).toBe(0)
    expect(readFileSync(include, 'utf8')).toContain(`server ${new URL(primaryRole.url).host};`)
    const lines = readFileSync(join(goReports, 'ledger.ndjson'), 'utf8').trim().split('\n')
    // --force went past the check, not past the gate (which said GO): recorded as not forced.
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({
      kind: 'cutover',
      action: 'flip',
      by: 'ops',
      reason: 'x',
      forced: false,
    })
  })

  it('rollback refuses without a restart of the Python tracker, and a Python that does not answer', async () => {
    const noRestart = await run('rollback')
    expect(noRestart.code).toBe(2)
    expect(noRestart.stderr[0]).toMatch(
      /^overlord-ts: rollback refused: give --restart-primary <command> \(the Python tracker's in-memory kill counts predate the flip/,
    )
    untouched()
    const dead = await run('rollback', '--primary', 'http://127.0.0.1:9', '--primary-restarted')
    expect(dead.code).toBe(2)
    expect(dead.stderr).toEqual([
      'overlord-ts: rollback refused: the Python tracker at http://127.0.0.1:9 does not answer /health (--force to route to it anyway)',
    ])
    untouched()
  })
})
