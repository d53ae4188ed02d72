import { describe, expect, it } from 'vitest'
import { parseManifest } from '../compare/manifest.ts'
import { parseRules } from '../compare/rules.ts'
import { SnapshotJudge } from './snapshot-compare.ts'

const manifest = parseManifest({
  endpoints: [
    { name: 'live', path: '/live' },
    { name: 'stats', path: '/stats/{character}' },
    { name: 'api-version', path: '/api-version', compare: 'status' },
  ],
})
const rules = parseRules({
  endpoints: {
    live: { keys: { 'body.players': ['character_name'] }, frames: { 'body.players': 'timestamp' } },
    stats: {
      fields: {
        'body.latest_snapshot.kills_per_hour': { abs: 0.5, reason: 'test: a computed rate' },
      },
    },
  },
})
const T = Date.UTC(2026, 10, 22, 8, 0, 0)
const live = (players: Record<string, unknown>[]) => ({ status: 200, body: { players } })

describe('replay judged by the comparison engine', () => {
  it('names each recorded path by the catalog template it was expanded from, not by pattern', () => {
    const judge = new SnapshotJudge(rules, manifest)
    const specs = judge.endpointsOf(
      { '/live': live([{ character_name: 'Brim Ironfist' }]), '/stats/Brim%20Ironfist': live([]) },
      T,
    )
    expect(specs.get('/stats/Brim%20Ironfist')?.name).toBe('stats')
    expect(specs.get('/stats/Someone%20Else')).toBeUndefined()
  })

  it("applies the endpoint's rules: a declared tolerance, exact elsewhere", () => {
    const judge = new SnapshotJudge(rules, manifest)
    const spec = manifest.endpoints[1]
    const body = (kph: number, ew = 1) => ({
      status: 200,
      body: { character_name: 'A', latest_snapshot: { kills_per_hour: kph, ew } },
    })
    expect(judge.judge('/stats/A', spec, body(340), body(340.4), T).differences).toEqual([])
    expect(judge.judge('/stats/A', spec, body(340), body(341), T).differences).toHaveLength(1)
    // Exact unless a rule says otherwise: a coordinate off by 1e-9 is a difference.
    expect(judge.judge('/stats/A', spec, body(340, 1), body(340, 1 + 1e-9), T).differences).toMatchObject([
      { path: 'body.latest_snapshot.ew', class: 'value' },
    ])
  })

  it('compares status-only endpoints by status', () => {
    const judge = new SnapshotJudge(rules, manifest)
    const v = (version: string) => ({ status: 200, body: { version } })
    expect(judge.judge('/api-version', manifest.endpoints[2], v('a'), v('b'), T).differences).toEqual([])
  })

  it("takes the recorded primary's older /live frame as lag, and a wrong value at the same frame as a mismatch", () => {
    const judge = new SnapshotJudge(rules, manifest)
    const spec = manifest.endpoints[0]
    const recorded = live([{ character_name: 'A', timestamp: '2026-11-22T08:00:00+00:00', kills: 1 }])
    const newer = live([{ character_name: 'A', timestamp: '2026-11-22T08:00:02+00:00', kills: 2 }])
    const lagging = judge.judge('/live', spec, recorded, newer, T)
    expect(lagging.differences).toEqual([])
    expect(lagging.lag).toEqual([{ path: 'body.players[A]', ms: -2000, kind: 'unpaired' }])
    const wrong = live([{ character_name: 'A', timestamp: '2026-11-22T08:00:00+00:00', kills: 2 }])
    expect(judge.judge('/live', spec, recorded, wrong, T + 10_000).differences).toMatchObject([
      { path: 'body.players[A].kills', expected: 1, actual: 2, class: 'value' },
    ])
  })

  it('reports with the engine classes', () => {
    const judge = new SnapshotJudge(rules, manifest)
    const d = judge.judge(
      '/live',
      manifest.endpoints[0],
      { status: 200, body: { players: [] } },
      { status: 200, body: { players: [], extra: 1 } },
      T,
    )
    expect(d.differences.map((x) => x.class)).toEqual(['extra_field'])
  })
  it('tells history the primary held before the capture (its baseline) apart from divergence', () => {
    const judge = new SnapshotJudge(rules, manifest)
    const spec = manifest.endpoints[0]
    const at = '2026-11-22T08:00:00+00:00'
    judge.baseline({ '/live': live([{ character_name: 'Old', timestamp: at, kills: 7 }]) }, T - 1000)
    const recorded = live([
      { character_name: 'New', timestamp: at, kills: 1 },
      { character_name: 'Old', timestamp: at, kills: 7 },
    ])
    const result = judge.judge(
      '/live',
      spec,
      recorded,
      live([{ character_name: 'New', timestamp: at, kills: 2 }]),
      T,
    )
    expect(result.preExisting).toMatchObject([{ path: 'body.players[Old]', class: 'missing_entity' }])
    expect(result.differences).toMatchObject([{ path: 'body.players[New].kills', class: 'value' }])
  })

  it('counts a document the capture never changed as pre-existing, and one it changed as divergence', () => {
    const judge = new SnapshotJudge(rules, manifest)
    const spec = manifest.endpoints[0]
    const before = live([{ character_name: 'Old', timestamp: '2026-11-22T08:00:00+00:00', kills: 7 }])
    judge.baseline({ '/live': before }, T - 1000)
    const notFound = { status: 404, body: { detail: 'Character not found' } }
    // Recorded as it was before the capture: the replay, which never saw its frames, cannot have it.
    const same = judge.judge('/live', spec, before, notFound, T)
    expect(same.differences).toEqual([])
    expect(same.preExisting.length).toBeGreaterThan(0)
    // Changed during the capture: the replay had the frames, so a difference is a divergence.
    const changed = live([{ character_name: 'Old', timestamp: '2026-11-22T08:00:02+00:00', kills: 8 }])
    expect(judge.judge('/live', spec, changed, notFound, T + 20_000).differences.length).toBeGreaterThan(0)
  })
})
