import { describe, expect, it } from 'vitest'
import { describeFieldNoise, fieldNoise } from './field-noise.ts'
import { count, percent, plural } from './figures.ts'
import { LEDGER_CLUSTERS, type LedgerCluster, type LedgerEntry } from './ledger.ts'

function sweep(
  id: string,
  endpoints: { name: string; clusters: LedgerCluster[]; clustersDropped?: number }[],
): LedgerEntry {
  return {
    id,
    startedAt: '2026-11-22T12:00:00.000Z',
    durationMs: 1,
    verdict: 'parity',
    characters: 1,
    requests: 1,
    lagMs: { p50: null, p95: null, max: null },
    endpoints: endpoints.map((e) => ({
      clean: true,
      mismatches: 0,
      hard: 0,
      noise: 0,
      explained: 0,
      errors: 0,
      ...e,
    })),
    errors: 0,
    waived: {},
  }
}

const noise = (signature: string, rate?: number, cls: LedgerCluster['class'] = 'value'): LedgerCluster => ({
  signature,
  class: cls,
  status: 'noise',
  count: 1,
  ...(rate === undefined ? {} : { rate }),
})

describe('noise by field across the ledger', () => {
  it('counts sweeps per status over the sweeps of the endpoint, once per sweep whatever the classes', () => {
    const fields = fieldNoise([
      sweep('a', [
        { name: 'live', clusters: [noise('players[].kills', 0.1), noise('players[].kills', 0.3, 'format')] },
        { name: 'stats', clusters: [] },
      ]),
      sweep('b', [
        {
          name: 'live',
          clusters: [{ signature: 'players[].kills', class: 'value', status: 'mismatch', count: 2, rate: 1 }],
        },
      ]),
      sweep('c', [{ name: 'live', clusters: [] }]),
      sweep('d', [
        {
          name: 'live',
          clusters: [{ signature: 'players[].xp', class: 'value', status: 'explained', count: 1 }],
        },
      ]),
    ])
    expect(fields).toEqual([
      {
        endpoint: 'live',
        signature: 'players[].kills',
        sweeps: 4,
        noise: 1,
        explained: 0,
        mismatch: 1,
        noiseRate: 0.25,
        peakNoiseShare: 0.3,
        firstNoise: 'a',
        lastNoise: 'a',
        incomplete: 0,
      },
      expect.objectContaining({ signature: 'players[].xp', noise: 0, explained: 1, noiseRate: 0 }),
    ])
    expect(describeFieldNoise(fields[0]!)).toBe(
      'live players[].kills: noise in 1 of 4 sweeps (25 %), explained in 0, mismatch in 1',
    )
  })

  it('reads ledger lines written before rate and clustersDropped: unknown, not zero', () => {
    const full = Array.from({ length: LEDGER_CLUSTERS }, (_, i) => noise(`f${i}`))
    const fields = fieldNoise([sweep('old', [{ name: 'live', clusters: full }])])
    expect(fields[0]).toMatchObject({ peakNoiseShare: null, incomplete: 1 })
    expect(describeFieldNoise(fields[0]!)).toMatch(/\(at least: 1 ledger line capped\)$/)
    const capped = fieldNoise([sweep('new', [{ name: 'live', clusters: [noise('f')], clustersDropped: 3 }])])
    expect(capped[0]!.incomplete).toBe(1)
    const complete = fieldNoise([sweep('new', [{ name: 'live', clusters: full, clustersDropped: 0 }])])
    expect(complete[0]!.incomplete).toBe(0)
  })

  it('keys fields by endpoint and signature without a plain object', () => {
    const fields = fieldNoise([sweep('a', [{ name: '__proto__', clusters: [noise('constructor')] }])])
    expect(fields).toMatchObject([{ endpoint: '__proto__', signature: 'constructor', noise: 1 }])
  })
})

describe('figures', () => {
  it('never rounds a rate across the threshold it is compared with', () => {
    expect(percent(0.99899999, 'down')).toBe('99.899 %')
    expect(percent(0.0100001, 'up')).toBe('1.001 %')
    expect(percent(0.005, 'up')).toBe('0.5 %')
    expect(percent(0.982, 'down')).toBe('98.2 %')
    expect(percent(1)).toBe('100 %')
    expect(count(1000)).toBe('1 000')
    expect(count(1234567)).toBe('1 234 567')
    expect(plural(1, 'sweep')).toBe('1 sweep')
  })
})
