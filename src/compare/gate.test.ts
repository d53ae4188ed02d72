import { describe, expect, it } from 'vitest'
import { DEFAULT_CRITERIA, evaluateGate, parseCriteria } from './gate.ts'
import type { LedgerEntry } from './ledger.ts'

const NOW = Date.parse('2026-11-22T12:00:00Z')

function entry(
  minutesAgo: number,
  endpoints: { name: string; clean: boolean; hard?: number }[],
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
      clusters: [],
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

  it('says no-go with too few sweeps', () => {
    const status = evaluateGate(cleanRun.slice(0, 9), [], criteria, NOW)
    expect(status.go).toBe(false)
    expect(status.criteria.find((c) => c.id === 'clean-rate:live')).toMatchObject({
      ok: false,
      figure: '100.000 % of 9 sweeps',
    })
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
