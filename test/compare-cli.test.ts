import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CommanderError } from 'commander'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerCompareCommands } from '../src/cli/commands/compare.ts'
import { registerCutover } from '../src/cli/commands/cutover.ts'
import { buildProgram } from '../src/cli/program.ts'
import { readDeclaration } from '../src/compare/gate.ts'
import { LEDGER_FILE, type LedgerCluster, type LedgerEntry, readLedger } from '../src/compare/ledger.ts'
import { frame, type Pair, silent, startPair, startRewritingProxy } from './compare-helpers.ts'

/** Runs the CLI; resolves the exit code and the printed lines. */
async function cli(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = []
  const program = buildProgram({ env: {}, logger: silent, out: (l) => out.push(l) }, [
    registerCompareCommands,
    registerCutover,
  ])
  program.exitOverride()
  for (const c of program.commands) {
    c.exitOverride()
    for (const sub of c.commands) sub.exitOverride()
  }
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} })
  for (const c of program.commands) c.configureOutput({ writeErr: () => {}, writeOut: () => {} })
  try {
    await program.parseAsync(args, { from: 'user' })
    return { code: 0, out }
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode, out }
    throw err
  }
}

let pair: Pair
let dir: string
beforeAll(async () => {
  pair = await startPair()
  await pair.feed([frame('Larsson', new Date(), { kills: 5 }), frame('Alpha', new Date())])
  dir = await mkdtemp(join(tmpdir(), 'overlord-cli-'))
})
afterAll(async () => {
  await pair.close()
  await rm(dir, { recursive: true, force: true })
})

const backends = () => ['--primary', pair.primary.url, '--shadow', pair.shadow.url, '--reports', dir]

describe('overlord-ts sweep', () => {
  it('exits 0 on parity, records the sweep in the ledger and writes the reports', async () => {
    const { code, out } = await cli(['sweep', ...backends()])
    expect(code).toBe(0)
    expect(out.some((l) => l.includes('PARITY'))).toBe(true)
    const { entries } = await readLedger(dir)
    expect(entries).toHaveLength(1)
    expect(entries[0]!.verdict).toBe('parity')
    expect(await readFile(join(dir, 'report.md'), 'utf8')).toContain('Latest sweep')
    // The browser feed was compared in the same sweep, and the primary's read budget reported.
    expect(out.find((l) => l.includes('ws-live'))).toMatch(/^\s+ok\s+ws-live/)
    expect(out.find((l) => l.startsWith('  load on the primary'))).toMatch(/limits 50\/s, 4 in flight/)
  })

  it('exits 1 on a mismatch', async () => {
    const proxy = await startRewritingProxy(pair.shadow.url, (path, body) => {
      if (path === '/total-kills') body.total += 1
      return body
    })
    try {
      const { code, out } = await cli([
        'sweep',
        '--primary',
        pair.primary.url,
        '--shadow',
        proxy.url,
        '--reports',
        dir,
      ])
      expect(code).toBe(1)
      expect(out.find((l) => l.includes('total-kills'))).toMatch(/FAIL/)
    } finally {
      await proxy.close()
    }
  })

  it('exits 2 when a backend is down', async () => {
    const { code } = await cli([
      'sweep',
      '--primary',
      pair.primary.url,
      '--shadow',
      'http://127.0.0.1:9',
      '--reports',
      dir,
    ])
    expect(code).toBe(2)
    const { entries } = await readLedger(dir)
    expect(entries.at(-1)!.verdict).toBe('error')
  })

  it('exits 2 on bad rules', async () => {
    const bad = join(dir, 'bad-rules.json')
    await writeFile(bad, '{"severity":{"nope":"hard"}}')
    await expect(cli(['sweep', ...backends(), '--rules', bad])).rejects.toMatchObject({
      code: 'CMP_ERR_RULES',
    })
  })
})

describe('overlord-ts watch and cutover', () => {
  it('watch sweeps for its duration and report rebuilds from the ledger', async () => {
    const wdir = await mkdtemp(join(tmpdir(), 'overlord-watch-'))
    try {
      const args = ['--primary', pair.primary.url, '--shadow', pair.shadow.url, '--reports', wdir]
      const { code, out } = await cli([
        'watch',
        ...args,
        '--interval',
        '10ms',
        '--jitter',
        '0',
        '--duration',
        '1s',
        // Each sweep also takes a /ws/live window; the shortest here, so the second sweep comes soon.
        '--ws-window',
        '0',
      ])
      expect(code).toBe(0)
      const { entries } = await readLedger(wdir)
      expect(entries.length).toBeGreaterThan(1)
      expect(out.at(-1)).toBe(`watch ended (duration) after ${entries.length} sweeps`)
      const report = await cli(['report', '--reports', wdir])
      expect(report.out[0]).toContain(`from ${entries.length} sweeps`)
    } finally {
      await rm(wdir, { recursive: true, force: true })
    }
  })

  it('cutover status is no-go (exit 1) without enough evidence, declare refuses, and a forced declaration stops watch', async () => {
    const cdir = await mkdtemp(join(tmpdir(), 'overlord-cutover-'))
    try {
      await cli(['sweep', '--primary', pair.primary.url, '--shadow', pair.shadow.url, '--reports', cdir])
      const status = await cli(['cutover', 'status', '--reports', cdir])
      expect(status.code).toBe(1)
      expect(status.out[0]).toMatch(/^cutover: NO-GO — 1 of the 1 000 sweeps required in the last 24 h; /)
      expect(status.out.filter((l) => l.includes('FAIL')).length).toBe(2)

      const refused = await cli(['cutover', 'declare', '--reports', cdir, '--by', 'ops'])
      expect(refused.code).toBe(1)
      expect(await readDeclaration(cdir)).toBeUndefined()

      const forced = await cli(['cutover', 'declare', '--reports', cdir, '--by', 'ops', '--force'])
      expect(forced.code).toBe(0)
      expect(forced.out.at(-1)).toBe(
        'switch with: overlord-ts cutover flip --nginx-include <file> --reason <why>',
      )
      expect(await readDeclaration(cdir)).toMatchObject({ by: 'ops', forced: true })

      const args = ['--primary', pair.primary.url, '--shadow', pair.shadow.url, '--reports', cdir]
      const watched = await cli(['watch', ...args, '--interval', '10ms', '--duration', '1h'])
      expect(watched.out.at(-1)).toBe('watch ended (cutover) after 0 sweeps')
    } finally {
      await rm(cdir, { recursive: true, force: true })
    }
  })
})

/** A ledger line as a sweep of the given endpoints would write it, `minutesAgo` before now. */
function ledgerLine(
  id: string,
  minutesAgo: number,
  endpoints: readonly string[],
  clusters: (endpoint: string) => LedgerCluster[] = () => [],
): LedgerEntry {
  return {
    id,
    startedAt: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    durationMs: 10,
    verdict: 'parity',
    characters: 2,
    requests: endpoints.length,
    lagMs: { p50: 0, p95: 0, max: 0 },
    endpoints: endpoints.map((name) => ({
      name,
      clean: true,
      mismatches: 0,
      hard: 0,
      noise: clusters(name).length,
      explained: 0,
      errors: 0,
      clusters: clusters(name),
      clustersDropped: 0,
    })),
    errors: 0,
    waived: {},
    database: { worstRelDiff: 0, withinTolerance: true },
  }
}

/** A reports directory holding `lines` as its ledger, and criteria over the defaults. */
async function ledgerDir(lines: readonly LedgerEntry[], criteria: object): Promise<string[]> {
  const gdir = await mkdtemp(join(tmpdir(), 'overlord-gate-'))
  dirs.push(gdir)
  await writeFile(join(gdir, LEDGER_FILE), lines.map((l) => `${JSON.stringify(l)}\n`).join(''))
  await writeFile(join(gdir, 'cutover.json'), JSON.stringify(criteria))
  return ['--reports', gdir, '--criteria', join(gdir, 'cutover.json')]
}

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const ENDPOINTS = Array.from({ length: 16 }, (_, i) => `/endpoint-${String(i).padStart(2, '0')}`)

describe('overlord-ts cutover status says why', () => {
  it('with 6 sweeps and 1 000 required: the sweep count leads the first line, stated once, not per endpoint', async () => {
    const criteria = JSON.parse(await readFile('compare/cutover.json', 'utf8'))
    expect(criteria.minSweeps).toBe(1000)
    const args = await ledgerDir(
      Array.from({ length: 6 }, (_, i) => ledgerLine(`s${i}`, 60 - i, ENDPOINTS)),
      criteria,
    )
    const { code, out } = await cli(['cutover', 'status', ...args])
    expect(code).toBe(1)
    expect(out[0]).toBe('cutover: NO-GO — 6 of the 1 000 sweeps required in the last 24 h')
    expect(out.filter((l) => l.includes('FAIL'))).toEqual([
      '  FAIL at least 1 000 sweeps of every endpoint in the last 24 h: 6 sweeps — first s0, last s5',
    ])
    expect(out.filter((l) => ENDPOINTS.some((e) => l.includes(e)))).toEqual([])

    const json = await cli(['cutover', 'status', '--json', ...args])
    expect(json.code).toBe(1)
    const status = JSON.parse(json.out[0]!)
    expect(status).toMatchObject({ go: false, reasons: ['6 of the 1 000 sweeps required in the last 24 h'] })
    expect(status.criteria.filter((c: { ok: boolean }) => !c.ok).map((c: { id: string }) => c.id)).toEqual([
      'sweeps',
    ])
    expect(status.criteria.filter((c: { id: string }) => c.id.startsWith('clean-rate:'))).toHaveLength(16)
  })

  it('a field noisy in 3 of 100 sweeps against maxFieldNoiseRate 0.01: NO-GO naming the field, and in the report', async () => {
    const kills: LedgerCluster = {
      signature: 'players[].kills',
      class: 'value',
      status: 'noise',
      count: 1,
      rate: 0.5,
    }
    const args = await ledgerDir(
      Array.from({ length: 100 }, (_, i) =>
        ledgerLine(`s${i}`, 200 - i, ['live', 'total-kills'], (ep) =>
          ep === 'live' && [10, 50, 90].includes(i) ? [kills] : [],
        ),
      ),
      { minSweeps: 100, maxFieldNoiseRate: 0.01 },
    )
    const { code, out } = await cli(['cutover', 'status', ...args])
    expect(code).toBe(1)
    expect(out[0]).toBe('cutover: NO-GO — live players[].kills noise in 3 of 100 sweeps (3 %, max 1 %)')
    expect(out).toContain(
      '       live players[].kills: noise in 3 of 100 sweeps (3 %), explained in 0, mismatch in 0',
    )

    const report = await cli(['report', ...args])
    expect(report.code).toBe(0)
    const md = await readFile(join(args[1]!, 'report.md'), 'utf8')
    expect(md).toContain('## Noise by field (whole ledger)')
    expect(md).toContain('| live | `players[].kills` | 100 | 3 | 0 | 0 | 3 % | 50 % | s90 |')
    const html = await readFile(join(args[1]!, 'report.html'), 'utf8')
    expect(html).toMatch(/<table id="field-noise">[\s\S]*<code>players\[\]\.kills<\/code>/)
    expect(html).toContain(
      '<p id="gate-reasons">live players[].kills noise in 3 of 100 sweeps (3 %, max 1 %).</p>',
    )
  })

  it('a clean ledger that meets every criterion: GO, exit 0, in one line with its figures', async () => {
    const args = await ledgerDir(
      Array.from({ length: 20 }, (_, i) => ledgerLine(`s${i}`, 30 - i, ENDPOINTS)),
      { minSweeps: 20 },
    )
    const { code, out } = await cli(['cutover', 'status', ...args])
    expect(code).toBe(0)
    expect(out).toEqual([
      'cutover: GO — 20 sweeps in the last 24 h (needs 20); 16 endpoints clean >= 99.9 % (worst /endpoint-00 100 %); ' +
        'no hard mismatch in the last 6 h; no field was noise; database within 0.1 % (worst 0 %); no expired waiver',
    ])
  })
})
