import { describe, expect, it } from 'vitest'
import { normalize } from './normalize.ts'
import { lagStats } from './frames.ts'
import { settleEndpoint, type TimedDoc, triageInstance } from './triage.ts'
import { parseRules } from './rules.ts'

const rules = parseRules(
  {
    endpoints: {
      live: {
        keys: { 'body.players': ['character_name'] },
        frames: { 'body.players': 'timestamp' },
        fields: { 'body.players[].kills': { monotonic: true, reason: 'test: a counter' } },
      },
    },
  },
  [
    {
      id: 'W-1',
      endpoint: 'live',
      path: 'body.players[].vt_state',
      reason: 'legacy sends mixed case',
      owner: 'ops',
      expires: '2099-01-01',
    },
    {
      id: 'W-old',
      endpoint: 'live',
      path: 'body.players[].ew',
      reason: 'expired',
      owner: 'ops',
      expires: '2020-01-01',
    },
  ],
)
const ep = rules.endpoints.live
const doc = (players: Record<string, unknown>[]) => normalize({ status: 200, body: { players } }, ep)
const ctx = {
  endpoint: 'live',
  rules,
  endpointRules: ep,
  nowMs: Date.parse('2026-11-22T09:00:00Z'),
  lagMs: 2000,
}

function triage(first: Record<string, unknown>[], shadow: Record<string, unknown>[], second = first) {
  const inst = triageInstance(
    { url: '/live', first: doc(first), shadow: doc(shadow), second: doc(second), gapMs: 10 },
    ctx,
  )
  return { inst, settled: settleEndpoint([inst], rules) }
}

describe('noise cancellation', () => {
  it('explains a shadow equal to the primary second read', () => {
    const { settled } = triage(
      [{ character_name: 'A', ew: 1 }],
      [{ character_name: 'A', ew: 2 }],
      [{ character_name: 'A', ew: 2 }],
    )
    expect(settled.differences).toEqual([])
    expect(settled.explained).toBe(1)
  })

  it('explains a monotonic counter between the two primary reads', () => {
    const { settled } = triage(
      [{ character_name: 'A', kills: 10 }],
      [{ character_name: 'A', kills: 12 }],
      [{ character_name: 'A', kills: 15 }],
    )
    expect(settled.explained).toBe(1)
  })

  it('does not explain a counter outside the two reads', () => {
    const { settled } = triage(
      [{ character_name: 'A', kills: 10 }],
      [{ character_name: 'A', kills: 20 }],
      [{ character_name: 'A', kills: 10 }],
    )
    expect(settled.differences).toMatchObject([{ status: 'mismatch', class: 'value', primaryAfter: 10 }])
  })

  it('calls a field that changed between primary reads noise, and the same difference without change a mismatch', () => {
    const changing = triage(
      [{ character_name: 'A', ew: 1 }],
      [{ character_name: 'A', ew: 0 }],
      [{ character_name: 'A', ew: 2 }],
    )
    expect(changing.settled.differences).toMatchObject([{ status: 'noise', signature: 'body.players[].ew' }])
    const steady = triage([{ character_name: 'A', ew: 1 }], [{ character_name: 'A', ew: 0 }])
    expect(steady.settled.differences).toMatchObject([{ status: 'mismatch' }])
  })

  it('counts suppressed volume per live waiver and ignores expired waivers', () => {
    const { settled } = triage(
      [{ character_name: 'A', vt_state: 'Combat', ew: 1 }],
      [{ character_name: 'A', vt_state: 'combat', ew: 5 }],
    )
    expect(settled.waived).toEqual({ 'W-1': 1 })
    expect(settled.differences).toMatchObject([{ signature: 'body.players[].ew', status: 'mismatch' }])
  })

  it('refuses a tolerance or allowance without a reason', () => {
    expect(() => parseRules({ endpoints: { live: { fields: { 'body.x': { abs: 1 } } } } })).toThrow(/reason/)
    expect(() => parseRules({ endpoints: { live: { fields: { 'body.x': { monotonic: true } } } } })).toThrow(
      /reason/,
    )
  })
})

describe('frame pairing: lag is not divergence', () => {
  const at = (s: number) => `2026-11-22T08:10:${String(s).padStart(2, '0')}+00:00`
  const p = (name: string, s: number, kills = s) => ({
    character_name: name,
    timestamp: at(s),
    kills,
    ew: s / 10,
  })
  const run = (
    first: Record<string, unknown>[],
    shadow: Record<string, unknown>[],
    history: Record<string, unknown>[][] = [],
  ) => {
    const base = Date.parse(at(0))
    const timed: TimedDoc[] = history.map((h, i) => ({ at: base + i, doc: doc(h) }))
    const inst = triageInstance(
      {
        url: '/live',
        first: doc(first),
        shadow: doc(shadow),
        second: doc(first),
        gapMs: 5,
        at: base + 1000,
        history: { primary: timed, shadow: [] },
      },
      { ...ctx, nowMs: base + 1000 },
    )
    const settled = settleEndpoint([inst], rules)
    return { settled, lag: lagStats(settled.lag, settled.paired) }
  }

  it('pairs a shadow two frames behind with the earlier primary poll that showed its frame', () => {
    const { settled, lag } = run([p('A', 8), p('B', 8)], [p('A', 4), p('B', 8)], [[p('A', 4), p('B', 4)]])
    expect(settled.differences).toEqual([])
    expect(lag).toMatchObject({ paired: 2, behind: 1, unpaired: 0, maxMs: 4000 })
  })

  it('takes an entity at a frame no primary read showed as lag, measured, not compared', () => {
    const { settled, lag } = run([p('A', 8)], [p('A', 6, 999)])
    expect(settled.differences).toEqual([])
    expect(lag).toMatchObject({ paired: 0, behind: 1, unpaired: 1, p50Ms: 2000 })
  })

  it('catches a field one frame off when both sides show the same frame', () => {
    const { settled } = run([p('A', 8)], [p('A', 8, 9)])
    expect(settled.differences).toMatchObject([
      { path: 'body.players[A].kills', status: 'mismatch', primary: 8, shadow: 9 },
    ])
  })

  it('catches a divergence in an entity paired through history', () => {
    const { settled } = run([p('A', 8)], [{ ...p('A', 4), ew: 0.41 }], [[p('A', 4)]])
    expect(settled.differences).toMatchObject([{ path: 'body.players[A].ew', status: 'mismatch' }])
  })

  it('does not call a shadow minutes away from the primary lag', () => {
    const { settled } = run([p('A', 8)], [{ ...p('A', 8), timestamp: '2026-11-22T08:00:00+00:00' }])
    expect(settled.differences.map((d) => d.status)).toContain('mismatch')
  })

  it('explains a player the primary just added (absent from its earlier poll) as lag', () => {
    const { settled } = run([p('A', 8), p('B', 8)], [p('A', 8)], [[p('A', 6)]])
    expect(settled.differences).toEqual([])
    expect(settled.explained).toBe(1)
  })

  it('still catches a player the shadow lacks that the primary has shown all along', () => {
    const { settled } = run([p('A', 8), p('B', 8)], [p('A', 8)], [[p('A', 6), p('B', 6)]])
    expect(settled.differences).toMatchObject([{ class: 'missing_entity', status: 'mismatch' }])
  })
})
