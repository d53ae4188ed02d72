import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { evaluateGate, parseCriteria } from '../src/compare/gate.ts'
import { readLedger, recordSweep } from '../src/compare/ledger.ts'
import { writeReports } from '../src/compare/report.ts'
import { frame, manifestOf, type Pair, startPair, startRewritingProxy, sweepOnce } from './compare-helpers.ts'

const run = promisify(execFile)
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
]

let pair: Pair
let dir: string
beforeAll(async () => {
  pair = await startPair()
  dir = await mkdtemp(join(tmpdir(), 'overlord-html-'))
  await pair.feed([frame('Larsson', new Date(), { kills: 5 }), frame('Alpha <b>', new Date())])
  const proxy = await startRewritingProxy(pair.shadow.url, (path, body) => {
    if (path === '/live') body.players[0].kills_per_hour = String(body.players[0].kills_per_hour)
    return body
  })
  try {
    const manifest = await manifestOf('live', 'total-kills')
    for (let i = 0; i < 3; i++)
      await recordSweep(dir, await sweepOnce(pair.primary.url, pair.shadow.url, { manifest }))
    await recordSweep(dir, await sweepOnce(pair.primary.url, proxy.url, { manifest }))
  } finally {
    await proxy.close()
  }
  const { entries } = await readLedger(dir)
  await writeReports(dir, { gate: evaluateGate(entries, [], parseCriteria({}), Date.now()) })
})
afterAll(async () => {
  await pair.close()
  await rm(dir, { recursive: true, force: true })
})

describe('the HTML report', () => {
  it('is self-contained: no external reference of any kind', async () => {
    const html = await readFile(join(dir, 'report.html'), 'utf8')
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*"(?:https?:)?\/\//)
    expect(html).not.toMatch(/<script|<link|@import|url\(/)
    expect(html).toContain("default-src 'none'")
    expect(html).toContain('Alpha &lt;b&gt;')
  })

  it('renders in headless Chromium from disk, with a parity chart per endpoint and the evidence', async () => {
    const file = join(dir, 'report.html')
    const { stdout } = await run(CHROMIUM, [...FLAGS, '--dump-dom', `file://${file}`], { timeout: 60_000 })
    expect(stdout).toMatch(/<span id="verdict" class="bad">mismatch<\/span>/)
    expect(stdout).toMatch(/<span id="sweep-count">4<\/span>/)
    expect(stdout).toMatch(/<span id="gate" class="bad">NO-GO<\/span>/)
    const charts = [...stdout.matchAll(/<svg class="parity-chart" data-endpoint="([^"]+)"/g)].map(
      (m) => m[1]!.split(' ')[0],
    )
    expect(charts.sort()).toEqual(['live', 'total-kills'])
    expect(stdout).toMatch(/<table id="clusters">[\s\S]*type_change[\s\S]*body\.players\[\]\.kills_per_hour/)
    expect(stdout).toMatch(/<table id="examples">[\s\S]*<code>340\.5<\/code><\/td><td><code>"340\.5"<\/code>/)
  })

  it('paints: a screenshot of the page is produced', async () => {
    const png = join(dir, 'report.png')
    await run(
      CHROMIUM,
      [...FLAGS, `--screenshot=${png}`, '--window-size=1200,1600', `file://${join(dir, 'report.html')}`],
      {
        timeout: 60_000,
      },
    )
    expect((await stat(png)).size).toBeGreaterThan(10_000)
  })
})
