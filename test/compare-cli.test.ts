import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CommanderError } from 'commander'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerCompareCommands } from '../src/cli/commands/compare.ts'
import { buildProgram } from '../src/cli/program.ts'
import { readDeclaration } from '../src/compare/gate.ts'
import { readLedger } from '../src/compare/ledger.ts'
import { frame, type Pair, silent, startPair, startRewritingProxy } from './compare-helpers.ts'

/** Runs the CLI; resolves the exit code and the printed lines. */
async function cli(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = []
  const program = buildProgram({ env: {}, logger: silent, out: (l) => out.push(l) }, [
    registerCompareCommands,
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
        '300ms',
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
      expect(status.out[0]).toMatch(/NO-GO/)
      expect(status.out.find((l) => l.includes('clean sweeps'))).toMatch(/FAIL .*100\.000 % of 1 sweeps/)

      const refused = await cli(['cutover', 'declare', '--reports', cdir, '--by', 'ops'])
      expect(refused.code).toBe(1)
      expect(await readDeclaration(cdir)).toBeUndefined()

      const forced = await cli(['cutover', 'declare', '--reports', cdir, '--by', 'ops', '--force'])
      expect(forced.code).toBe(0)
      expect(forced.out.join('\n')).toMatch(/flip nginx[\s\S]*nginx -s reload[\s\S]*rollback/)
      expect(await readDeclaration(cdir)).toMatchObject({ by: 'ops', forced: true })

      const args = ['--primary', pair.primary.url, '--shadow', pair.shadow.url, '--reports', cdir]
      const watched = await cli(['watch', ...args, '--interval', '10ms', '--duration', '1h'])
      expect(watched.out.at(-1)).toBe('watch ended (cutover) after 0 sweeps')
    } finally {
      await rm(cdir, { recursive: true, force: true })
    }
  })
})
