import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { checkDatabases, type DatabaseParity, type DbParityOptions } from '../src/compare/db-parity.ts'
import { buildReportData } from '../src/compare/report-data.ts'
import { renderHtml } from '../src/compare/report-html.ts'
import { renderMarkdown } from '../src/compare/report-markdown.ts'
import type { SweepResult } from '../src/compare/sweep.ts'
import { frame, startPair } from './compare-helpers.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'

describe('database parity', () => {
  it('is within tolerance for the same frames and names the figures a rare only the primary stored moves', async () => {
    const pair = await startPair()
    try {
      const t = Date.now() - 10 * 60_000
      await pair.feed([
        frame('Larsson', new Date(t), { kills: 5 }),
        frame('Larsson', new Date(t + 2000), { kills: 9 }),
      ])
      const options = {
        primaryUrl: pair.primary.database.url,
        shadowUrl: pair.shadow.database.url,
        bucketSeconds: 60,
        closeAfterMs: 0,
      }
      const same = await checkDatabases(options)
      expect(same.checks.filter((c) => !c.ok)).toEqual([])
      expect(same.checks.find((c) => c.name === 'telemetry_events.count(*)')).toMatchObject({
        table: 'telemetry_events',
        column: 'count(*)',
        primary: 2,
        shadow: 2,
      })
      expect(same.teeLagMs.samples).toBe(2)

      const rare = { type: 'rare', character_name: 'Larsson', name: 'Pyreal Sword', ew: 1, ns: 2, z: 0 }
      await pair.feed([{ ...rare, timestamp: new Date(t + 3000).toISOString() }], 'primary')
      const drift = await checkDatabases(options)
      expect(drift.withinTolerance).toBe(false)
      const failing = drift.checks.filter((c) => !c.ok)
      expect(
        failing
          .filter((c) => c.bucket === undefined)
          .map((c) => c.name)
          .sort(),
      ).toEqual([
        'rare_events.count(*)',
        'rare_events.count(*)[Larsson]',
        'rare_stats.sum(total_rares)',
        'rare_stats.total_rares[Larsson]',
      ])
      const buckets = failing.filter((c) => c.bucket !== undefined)
      expect(buckets).toHaveLength(1)
      expect(buckets[0]).toMatchObject({ table: 'rare_events', column: 'count(*)', primary: 1, shadow: 0 })
      expect(buckets[0]!.name).toBe(`rare_events.count(*)@${buckets[0]!.bucket}`)
    } finally {
      await pair.close()
    }
  })
})

/** Two databases with the tracker's schema, written with raw SQL as Python and the shadow would. */
let primary: TestDatabase
let shadow: TestDatabase

async function exec(db: TestDatabase, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}

const lifetime = (db: TestDatabase, character: string, json: string) =>
  exec(
    db,
    `INSERT INTO combat_stats (character_name, lifetime, updated_at) VALUES ($1, $2::jsonb, '2024-05-01T09:00:00Z')`,
    [character, json],
  )

const options = (extra: Partial<DbParityOptions> = {}): DbParityOptions => ({
  primaryUrl: primary.url,
  shadowUrl: shadow.url,
  since: '2024-05-01T00:00:00Z',
  bucketSeconds: 3600,
  closeAfterMs: 0,
  now: () => Date.parse('2024-05-01T12:00:00Z'),
  ...extra,
})

/** The report's database tables, as rows keyed by column header. */
function markdownChecks(md: string, heading: 'Failing:' | 'Passing'): Record<string, string>[] {
  const section = md.slice(md.indexOf('### Database checks'))
  const lines = section.slice(section.indexOf(heading)).split('\n')
  const start = lines.findIndex((l) => l.startsWith('| table |'))
  const header = lines[start]!.split('|')
    .slice(1, -1)
    .map((h) => h.trim())
  const rows: Record<string, string>[] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    const cells = line.split(/(?<!\\)\|/).slice(1, -1)
    rows.push(Object.fromEntries(header.map((h, i) => [h, cells[i]!.trim()])))
  }
  return rows
}

function htmlChecks(html: string, id: string): string[][] {
  const table = html.match(new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`))?.[1] ?? ''
  return [...table.matchAll(/<tr data-ok="\w+">(.*?)<\/tr>/g)].map((row) =>
    [...row[1]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((cell) => cell[1]!.replace(/<\/?code>/g, '')),
  )
}

/** A report whose latest sweep carries only this database parity. */
function reports(database: DatabaseParity): { md: string; html: string } {
  const lag = { p50Ms: null, p95Ms: null, maxMs: null, readGapMs: { p50: null, max: null } }
  const sweep = {
    id: 'db-parity',
    startedAt: '2024-05-01T12:00:00.000Z',
    finishedAt: '2024-05-01T12:00:01.000Z',
    durationMs: 1000,
    primary: 'http://primary',
    shadow: 'http://shadow',
    verdict: database.withinTolerance ? 'parity' : 'mismatch',
    characters: 0,
    requests: 0,
    lag: lag as unknown as SweepResult['lag'],
    endpoints: [],
    errors: [],
    waivers: [],
    database,
  } satisfies SweepResult
  const data = buildReportData([], sweep, undefined, Date.parse('2024-05-01T12:00:02Z'))
  return { md: renderMarkdown(data), html: renderHtml(data) }
}

describe('database parity compares values, not text (issue 9 §2)', () => {
  beforeEach(async () => {
    ;[primary, shadow] = await Promise.all([createTestDatabase(), createTestDatabase()])
  })
  afterEach(async () => {
    await Promise.all([primary.drop(), shadow.drop()])
  })

  it('passes when Python stored the lifetime as 105.0 and the shadow as 105 (the md5 check failed 22 of 22)', async () => {
    await lifetime(primary, 'Larsson', '{"kills": 105.0, "damage": {"fire": 10.50}}')
    await lifetime(shadow, 'Larsson', '{"kills": 105, "damage": {"fire": 10.5}}')
    await exec(primary, "INSERT INTO char_stats VALUES ('Larsson', 105)")
    await exec(shadow, "INSERT INTO char_stats VALUES ('Larsson', 105)")
    // The stored text differs: only a comparison by value can call these equal.
    const text = 'SELECT lifetime::text AS t FROM combat_stats'
    expect((await exec(primary, text)).rows[0].t).not.toBe((await exec(shadow, text)).rows[0].t)

    const result = await checkDatabases(options())
    expect(result.checks.filter((c) => !c.ok)).toEqual([])
    expect(result.withinTolerance).toBe(true)
    expect(result.worstRelDiff).toBe(0)
    expect(result.checks.find((c) => c.name === 'combat_stats.lifetime[Larsson]')).toEqual({
      name: 'combat_stats.lifetime[Larsson]',
      table: 'combat_stats',
      column: 'lifetime',
      key: 'Larsson',
      primary: { kills: 105, damage: { fire: 10.5 } },
      shadow: { kills: 105, damage: { fire: 10.5 } },
      relDiff: 0,
      ok: true,
    })
    // int8 arrives from pg as text; the check holds numbers.
    expect(result.checks.find((c) => c.name === 'char_stats.total_kills[Larsson]')).toMatchObject({
      key: 'Larsson',
      primary: 105,
      shadow: 105,
      ok: true,
    })
    expect(result.checks.find((c) => c.name === 'char_stats.sum(total_kills)')).toMatchObject({
      primary: 105,
      shadow: 105,
    })
  })

  it('a total in motion agrees when both sides pass through the same values; one that holds still is exact', async () => {
    await exec(primary, "INSERT INTO char_stats VALUES ('Larsson', 10), ('Idle', 40)")
    await exec(shadow, "INSERT INTO char_stats VALUES ('Larsson', 11), ('Idle', 39)")
    // Kills keep landing on the primary while the check reads: 10 at its first read, 12 at its second.
    const result = await checkDatabases(
      options({
        settleMs: 10,
        onRead: async (side, n) => {
          if (side === 'primary' && n === 1)
            await exec(primary, "UPDATE char_stats SET total_kills = 12 WHERE character_name = 'Larsson'")
        },
      }),
    )
    expect(result.checks.find((c) => c.name === 'char_stats.total_kills[Larsson]')).toMatchObject({
      ok: true,
      detail: 'in motion: primary 10→12, shadow 11→11 over 10 ms',
    })
    // Idle on both sides and one kill apart: a divergence, named.
    expect(result.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['char_stats.total_kills[Idle]'])
  })

  it('fails on 105 vs 106 and names the table, column, character, JSON path and both values', async () => {
    await lifetime(primary, 'Larsson', '{"kills": {"total": 105.0}, "deaths": 2}')
    await lifetime(shadow, 'Larsson', '{"kills": {"total": 106}, "deaths": 2}')
    await lifetime(primary, 'Alpha', '{"kills": {"total": 1}}')

    const result = await checkDatabases(options())
    expect(result.withinTolerance).toBe(false)
    const failing = result.checks.filter((c) => !c.ok)
    expect(failing.map((c) => c.name).sort()).toEqual([
      'combat_stats.count(*)',
      'combat_stats.lifetime[Alpha]',
      'combat_stats.lifetime[Larsson] kills.total',
    ])
    expect(failing.find((c) => c.key === 'Larsson')).toEqual({
      name: 'combat_stats.lifetime[Larsson] kills.total',
      table: 'combat_stats',
      column: 'lifetime',
      key: 'Larsson',
      path: 'kills.total',
      primary: 105,
      shadow: 106,
      detail: 'value Δ=1',
      relDiff: 1 / 105,
      ok: false,
    })
    expect(failing.find((c) => c.key === 'Alpha')).toMatchObject({
      primary: { kills: { total: 1 } },
      detail: 'no row in shadow',
    })
    expect(failing.find((c) => c.key === 'Alpha')).not.toHaveProperty('shadow')
    expect(result.worstRelDiff).toBe(1)

    // The count tolerance is a rule for counts and totals: a document is still compared exactly.
    const lenient = await checkDatabases(options({ tolerance: 0.5 }))
    expect(lenient.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'combat_stats.lifetime[Alpha]',
      'combat_stats.lifetime[Larsson] kills.total',
    ])

    const { md, html } = reports(result)
    expect(markdownChecks(md, 'Failing:')).toContainEqual({
      table: 'combat_stats',
      column: 'lifetime',
      row: 'Larsson',
      path: '`kills.total`',
      primary: '105',
      shadow: '106',
      how: 'value Δ=1',
    })
    expect(htmlChecks(html, 'database-failing')).toContainEqual([
      'combat_stats',
      'lifetime',
      'Larsson',
      'kills.total',
      '105',
      '106',
      'value Δ=1',
    ])
  })

  it('names a count mismatch in one time bucket by its table and bucket', async () => {
    const row = (at: string) => [`Larsson`, at, at]
    const insert =
      'INSERT INTO telemetry_events (character_name, timestamp, received_at, kills) VALUES ($1, $2, $3, 1)'
    for (const db of [primary, shadow]) {
      for (const at of ['2024-05-01T09:10:00Z', '2024-05-01T09:20:00Z', '2024-05-01T10:05:00Z'])
        await exec(db, insert, row(at))
    }
    await exec(primary, insert, row('2024-05-01T10:30:00Z'))

    const result = await checkDatabases(options())
    const failing = result.checks.filter((c) => !c.ok)
    expect(failing.map((c) => c.name).sort()).toEqual([
      'telemetry_events.count(*)',
      'telemetry_events.count(*)@2024-05-01T10:00:00Z',
      'telemetry_events.count(*)[Larsson]',
    ])
    expect(failing.find((c) => c.bucket !== undefined)).toEqual({
      name: 'telemetry_events.count(*)@2024-05-01T10:00:00Z',
      table: 'telemetry_events',
      column: 'count(*)',
      bucket: '2024-05-01T10:00:00Z',
      primary: 2,
      shadow: 1,
      detail: 'value Δ=-1',
      relDiff: 0.5,
      ok: false,
    })
    expect(result.checks.find((c) => c.bucket === '2024-05-01T09:00:00Z')).toMatchObject({
      table: 'telemetry_events',
      primary: 2,
      shadow: 2,
      ok: true,
    })
    expect(result.teeLagMs).toMatchObject({ samples: 3, p50: 0 })

    const { md, html } = reports(result)
    expect(markdownChecks(md, 'Failing:')).toContainEqual({
      table: 'telemetry_events',
      column: 'count(*)',
      row: '@2024-05-01T10:00:00Z',
      path: '',
      primary: '2',
      shadow: '1',
      how: 'value Δ=-1',
    })
    expect(markdownChecks(md, 'Passing')).toContainEqual(
      expect.objectContaining({ table: 'telemetry_events', row: '@2024-05-01T09:00:00Z', primary: '2' }),
    )
    expect(htmlChecks(html, 'database-failing')).toContainEqual([
      'telemetry_events',
      'count(*)',
      '@2024-05-01T10:00:00Z',
      '',
      '2',
      '1',
      'value Δ=-1',
    ])
  })
})
