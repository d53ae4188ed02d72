import { describe, expect, it } from 'vitest'
import { normalize } from './normalize.ts'
import { measureLag, settleEndpoint, triageInstance } from './noise.ts'
import { parseRules } from './rules.ts'

const rules = parseRules(
  {
    endpoints: {
      live: {
        keys: { 'body.players': ['character_name'] },
        fields: { 'body.players[].kills': { monotonic: true } },
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

  it('measures the lag from the probe timestamps', () => {
    const lag = measureLag(
      doc([
        { character_name: 'A', timestamp: '2026-11-22T08:10:04+00:00' },
        { character_name: 'B', timestamp: '2026-11-22T08:10:04+00:00' },
      ]),
      doc([
        { character_name: 'A', timestamp: '2026-11-22T08:10:02+00:00' },
        { character_name: 'B', timestamp: '2026-11-22T08:10:04+00:00' },
      ]),
      'body.players',
      'timestamp',
    )
    expect(lag).toEqual({ samples: 2, p50Ms: 0, p95Ms: 2000, maxMs: 2000 })
  })
})
