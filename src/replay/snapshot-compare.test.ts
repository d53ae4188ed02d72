import { describe, expect, it } from 'vitest'
import { compareResponse, normalize } from './snapshot-compare.ts'

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
