import { describe, expect, it } from 'vitest'
import { baselineHistory } from './baseline.ts'

const ok = (body: unknown) => ({ status: 200, body })

describe('baselineHistory', () => {
  it('a fresh primary holds nothing', () => {
    expect(
      baselineHistory({
        '/live': ok({ players: [] }),
        '/trails?seconds=600': ok({ trails: [] }),
        '/history?from=2026-11-22T07:00:00Z': ok({ data: [] }),
        '/total-kills': ok({ total: 0 }),
        '/total-rares': ok({ all_time: 0, today: 0 }),
        '/character-stats/list': ok({ characters: [] }),
        '/portals': ok({ portals: [] }),
        '/spawns/heatmap?hours=24&limit=10000': ok({ spawn_points: [], hours_window: 24, total_points: 0 }),
        '/quest-status': ok({ quest_data: [] }),
        '/vital-sharing/peers': ok({ peers: [] }),
        '/api-version': ok('1.2.3'),
      }),
    ).toEqual({ held: [], unreadable: [] })
  })

  it('names what a primary already holds, by endpoint and count', () => {
    expect(
      baselineHistory({
        '/live': ok({ players: [{}, {}] }),
        '/trails?seconds=600': ok({ trails: Array.from({ length: 340 }, () => ({})) }),
        '/total-kills': ok({ total: 1 }),
        '/portals': ok({ portals: [] }),
        '/quest-status': ok({ quest_data: [{}] }),
      }).held,
    ).toEqual(['2 players in /live', '340 trail points', '1 kill in /total-kills', '1 quest timer'])
  })

  it('says which endpoints could not tell, and does not judge endpoints it does not know', () => {
    expect(
      baselineHistory({
        '/live': { status: 0, body: { error: 'connect ECONNREFUSED 127.0.0.1:9' } },
        '/portals': { status: 401, body: { detail: 'Not authenticated' } },
        '/total-kills': ok('<html>'),
        '/stats/Larsson': { status: 404, body: { detail: 'Character not found' } },
        '/server-health': { status: 500, body: {} },
      }),
    ).toEqual({
      held: [],
      unreadable: ['/live: no answer', '/portals: status 401', '/total-kills: an answer of another shape'],
    })
  })
})
