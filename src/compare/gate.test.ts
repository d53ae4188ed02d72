import { describe, expect, it } from 'vitest'
import { DEFAULT_CRITERIA, evaluateGate, gateLines, parseCriteria } from './gate.ts'
import type { LedgerCluster, LedgerEntry } from './ledger.ts'

const NOW = Date.parse('2026-11-22T12:00:00Z')

function entry(
  minutesAgo: number,
  endpoints: { name: string; clean: boolean; hard?: number; clusters?: LedgerCluster[] }[],
  db?: number,
): LedgerEntry {
  const e: LedgerEntry = {
    id: `s${minutesAgo}`,
    startedAt: new Date(NOW - minutesAgo * 60_000).toISOString(),
    durationMs: 10,
    verdict: endpoints.every((x) => x.clean) ? 'parity' : 'mismatch',
    characters: 1,
    requests: 3,
    lagMs: { p50: 0, p95: 0, max: 0 },
    endpoints: endpoints.map((x) => ({
      name: x.name,
      clean: x.clean,
      mismatches: x.clean ? 0 : 1,
      hard: x.hard ?? 0,
      noise: 0,
      explained: 0,
      errors: 0,
      clusters: x.clusters ?? [],
    })),
    errors: 0,
    waived: {},
  }
  if (db !== undefined) e.database = { worstRelDiff: db, withinTolerance: db <= 0.001 }
  return e
}

const criteria = parseCriteria({ minSweeps: 10, minCleanRate: 0.9 })
const cleanRun = Array.from({ length: 10 }, (_, i) => entry(60 + i, [{ name: 'live', clean: true }], 0))

describe('cutover gate', () => {
  it('says go when every criterion holds', () => {
    const status = evaluateGate(cleanRun, [], criteria, NOW)
    expect(status.criteria.filter((c) => !c.ok)).toEqual([])
    expect(status.go).toBe(true)
  })

  it('says no-go with too few sweeps, as one criterion rather than one per endpoint', () => {
    const status = evaluateGate(cleanRun.slice(0, 9), [], criteria, NOW)
    expect(status.go).toBe(false)
    expect(status.reasons).toEqual(['9 of the 10 sweeps required in the last 24 h'])
    expect(status.criteria.filter((c) => !c.ok)).toEqual([
      expect.objectContaining({ id: 'sweeps', figure: '9 sweeps', evidence: 'first s60, last s68' }),
    ])
    expect(status.criteria.find((c) => c.id === 'clean-rate:live')).toMatchObject({
      ok: true,
      figure: '100 % of 9 sweeps',
    })
  })

  it('with 6 sweeps of 16 endpoints and 1 000 required, leads with the sweep count and prints it once', () => {
    const names = Array.from({ length: 16 }, (_, i) => `ep${String(i).padStart(2, '0')}`)
    const six = Array.from({ length: 6 }, (_, i) =>
      entry(
        10 + i,
        names.map((name) => ({ name, clean: true })),
        0,
      ),
    )
    const status = evaluateGate(six, [], DEFAULT_CRITERIA, NOW)
    expect(status.go).toBe(false)
    expect(status.reasons).toEqual(['6 of the 1 000 sweeps required in the last 24 h'])
    const lines = gateLines(status)
    expect(lines[0]).toBe('cutover: NO-GO — 6 of the 1 000 sweeps required in the last 24 h')
    expect(lines.filter((l) => l.includes('FAIL'))).toEqual([
      '  FAIL at least 1 000 sweeps of every endpoint in the last 24 h: 6 sweeps — first s10, last s15',
    ])
    expect(lines).toContain('  ok   clean rate holds on 16 of 16 endpoints')
  })

  it('lists only the endpoints below the clean rate, with their first and last unclean sweeps', () => {
    const run = [
      ...cleanRun,
      entry(50, [{ name: 'live', clean: false }], 0),
      entry(40, [{ name: 'live', clean: true }], 0),
      entry(30, [{ name: 'live', clean: false }], 0),
    ].map((e) => ({ ...e, endpoints: [...e.endpoints, { ...e.endpoints[0]!, name: 'stats', clean: true }] }))
    const status = evaluateGate(run, [], criteria, NOW)
    expect(status.go).toBe(false)
    expect(status.reasons).toEqual(['live clean 84.615 % (needs 90 %)'])
    const lines = gateLines(status)
    expect(lines[0]).toBe('cutover: NO-GO — live clean 84.615 % (needs 90 %)')
    expect(lines.filter((l) => l.includes('FAIL'))).toEqual([
      '  FAIL live clean in at least 90 % of sweeps: 84.615 % of 13 sweeps — 2 unclean, first s50, last s30',
    ])
    expect(lines.some((l) => l.includes('stats'))).toBe(false)
    expect(lines).toContain('  ok   clean rate holds on 1 of 2 endpoints')
  })

  it('fails a field that is noise in 3 of 100 sweeps against a 1 % maximum, and names it', () => {
    const kills: LedgerCluster = { signature: 'players[].kills', class: 'value', status: 'noise', count: 1 }
    const run = Array.from({ length: 100 }, (_, i) =>
      entry(100 - i, [{ name: 'live', clean: true, clusters: i % 33 === 5 ? [kills] : [] }], 0),
    )
    const strict = parseCriteria({ minSweeps: 100, maxFieldNoiseRate: 0.01 })
    const status = evaluateGate(run, [], strict, NOW)
    expect(status.go).toBe(false)
    expect(status.reasons).toEqual(['live players[].kills noise in 3 of 100 sweeps (3 %, max 1 %)'])
    expect(status.criteria.find((c) => c.id === 'field-noise')).toMatchObject({
      ok: false,
      evidence: 'live players[].kills 3 of 100',
    })
    expect(status.fieldNoise[0]).toMatchObject({
      endpoint: 'live',
      signature: 'players[].kills',
      sweeps: 100,
      noise: 3,
      mismatch: 0,
      noiseRate: 0.03,
      firstNoise: 's95',
      lastNoise: 's29',
    })
    expect(gateLines(status)).toContain(
      '       live players[].kills: noise in 3 of 100 sweeps (3 %), explained in 0, mismatch in 0',
    )
    // Each sweep decided "noise" on its own; only the ledger shows the field is noisy too often.
    expect(status.criteria.filter((c) => c.id.startsWith('clean-rate:')).every((c) => c.ok)).toBe(true)

    const once = run.map((e, i) =>
      i % 33 === 5 && i > 5 ? entry(100 - i, [{ name: 'live', clean: true }], 0) : e,
    )
    expect(evaluateGate(once, [], strict, NOW).go).toBe(true)
  })

  it('says go in one line with the figures that justify it', () => {
    const status = evaluateGate(cleanRun, [], criteria, NOW)
    expect(status.go).toBe(true)
    expect(gateLines(status)).toEqual([
      'cutover: GO — 10 sweeps in the last 24 h (needs 10); 1 endpoint clean >= 90 % (worst live 100 %); ' +
        'no hard mismatch in the last 6 h; no field was noise; database within 0.1 % (worst 0 %); ' +
        'no expired waiver',
    ])
  })

  it('tolerates an unclean sweep within the clean rate, but not a recent hard mismatch', () => {
    const soft = [...cleanRun, entry(5, [{ name: 'live', clean: false }], 0)]
    expect(evaluateGate(soft, [], criteria, NOW).go).toBe(true)
    const hard = [...cleanRun, entry(5, [{ name: 'live', clean: false, hard: 2 }], 0)]
    const status = evaluateGate(hard, [], criteria, NOW)
    expect(status.go).toBe(false)
    expect(status.criteria.find((c) => c.id === 'no-hard-mismatch')).toMatchObject({
      ok: false,
      evidence: 's5: live×2',
    })
  })

  it('ignores a hard mismatch older than the hard window', () => {
    const old = [entry(7 * 60, [{ name: 'live', clean: false, hard: 1 }], 0), ...cleanRun]
    expect(evaluateGate(old, [], criteria, NOW).criteria.find((c) => c.id === 'no-hard-mismatch')?.ok).toBe(
      true,
    )
  })

  it('requires database parity evidence within tolerance', () => {
    const noDb = cleanRun.map(({ database: _db, ...rest }) => rest)
    expect(evaluateGate(noDb, [], criteria, NOW).go).toBe(false)
    const drift = [...cleanRun, entry(1, [{ name: 'live', clean: true }], 0.01)]
    expect(evaluateGate(drift, [], criteria, NOW).criteria.find((c) => c.id === 'database-parity')?.ok).toBe(
      false,
    )
  })

  it('refuses while a waiver is past its expiry', () => {
    const waiver = { id: 'W', endpoint: 'live', path: 'x', reason: 'r', owner: 'o', expires: '2026-11-01' }
    const status = evaluateGate(cleanRun, [waiver], criteria, NOW)
    expect(status.go).toBe(false)
    expect(status.criteria.find((c) => c.id === 'no-expired-waiver')?.evidence).toBe('W (o, 2026-11-01)')
  })

  it('has the issue defaults', () => {
    expect(DEFAULT_CRITERIA).toMatchObject({
      windowHours: 24,
      minCleanRate: 0.999,
      minSweeps: 1000,
      noHardMismatchHours: 6,
    })
    expect(() => parseCriteria({ minSweeps: -1 })).toThrow(/minSweeps/)
  })
})
