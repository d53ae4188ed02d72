import { describe, expect, it } from 'vitest'
import { checkDatabases } from '../src/compare/db-parity.ts'
import { frame, startPair } from './compare-helpers.ts'

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
      expect(same.checks.find((c) => c.name === 'telemetry_events.count')).toMatchObject({
        primary: 2,
        shadow: 2,
      })
      expect(same.teeLagMs.samples).toBe(2)

      const rare = { type: 'rare', character_name: 'Larsson', name: 'Pyreal Sword', ew: 1, ns: 2, z: 0 }
      await pair.feed([{ ...rare, timestamp: new Date(t + 3000).toISOString() }], 'primary')
      const drift = await checkDatabases(options)
      expect(drift.withinTolerance).toBe(false)
      const failing = drift.checks.filter((c) => !c.ok).map((c) => c.name)
      expect(failing.filter((n) => !n.startsWith('rare_events@')).sort()).toEqual([
        'rare_events.count',
        'rare_events[Larsson]',
        'rare_stats.total_rares',
        'rare_stats.total_rares[Larsson]',
      ])
      expect(failing.filter((n) => n.startsWith('rare_events@'))).toHaveLength(1)
    } finally {
      await pair.close()
    }
  })
})
