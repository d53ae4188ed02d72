import { describe, expect, it } from 'vitest'
import { parseManifest } from '../compare/manifest.ts'
import { parseRules } from '../compare/rules.ts'
import { compareResponse, engineComparer, normalize } from './snapshot-compare.ts'

describe('snapshot comparison', () => {
  it('treats equal instants in any ISO spelling as equal', () => {
    expect(normalize({ t: '2026-11-22T08:10:02.120Z' })).toEqual({ t: '2026-11-22T08:10:02.120000+00:00' })
    expect(
      compareResponse(
        {
          status: 200,
          body: { players: [{ timestamp: '2026-11-22T08:10:02Z', kills_per_hour: 0.1 + 0.2 }] },
        },
        { status: 200, body: { players: [{ timestamp: '2026-11-22T08:10:02+00:00', kills_per_hour: 0.3 }] } },
      ),
    ).toEqual([])
  })

  it('reports status, value and list-length differences with their paths', () => {
    const d = compareResponse(
      { status: 200, body: { players: [{ kills: 1 }, { kills: 2 }] } },
      { status: 404, body: { players: [{ kills: 3 }] } },
    )
    expect(d).toEqual([
      { path: '$status', expected: 200, actual: 404 },
      { path: '$.players.length', expected: 2, actual: 1 },
      { path: '$.players[0].kills', expected: 1, actual: 3 },
    ])
  })
})

describe('engine comparer', () => {
  const rules = parseRules({
    defaults: { abs: 1e-6, rel: 1e-9, toleranceMs: 0 },
    lag: { assumedMs: 0 },
    endpoints: { stats: { fields: { 'body.latest_snapshot.kills_per_hour': { abs: 0.5 } } } },
  })
  const manifest = parseManifest({
    endpoints: [
      { name: 'live', path: '/live' },
      { name: 'stats', path: '/stats/{character}' },
      { name: 'api-version', path: '/api-version', compare: 'status' },
    ],
  })
  const compare = engineComparer(rules, manifest)

  it("applies the concrete path's endpoint rules", () => {
    const body = (kph: number) => ({
      character_name: 'Brim Ironfist',
      latest_snapshot: { kills_per_hour: kph },
    })
    expect(
      compare('/stats/Brim%20Ironfist', { status: 200, body: body(340) }, { status: 200, body: body(340.4) }),
    ).toEqual([])
    expect(
      compare('/stats/Brim%20Ironfist', { status: 200, body: body(340) }, { status: 200, body: body(341) }),
    ).toHaveLength(1)
  })

  it('compares status-only endpoints by status', () => {
    expect(
      compare(
        '/api-version',
        { status: 200, body: { version: 'a' } },
        { status: 200, body: { version: 'b' } },
      ),
    ).toEqual([])
  })

  it('reports with the engine classes', () => {
    const d = compare(
      '/live',
      { status: 200, body: { players: [] } },
      { status: 200, body: { players: [], extra: 1 } },
    )
    expect(d.map((x) => x.class)).toEqual(['extra_field'])
  })
})
