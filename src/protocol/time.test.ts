import { describe, expect, it } from 'vitest'
import { formatInstant, parseInstant, parsePgTimestamp } from './time.ts'

describe('parseInstant', () => {
  it('accepts Z, offsets, fractions and naive forms as the same instant', () => {
    const z = parseInstant('2026-11-22T08:10:02Z')
    expect(z).toBe(Date.UTC(2026, 10, 22, 8, 10, 2) * 1000)
    expect(parseInstant('2026-11-22T09:10:02+01:00')).toBe(z)
    expect(parseInstant('2026-11-22T03:40:02-0430')).toBe(z)
    expect(parseInstant('2026-11-22T08:10:02')).toBe(z)
    expect(parseInstant('2026-11-22T08:10:02.120Z')).toBe(z! + 120_000)
    expect(parseInstant('2026-11-22T08:10:02.1234567Z')).toBe(z! + 123_456)
  })

  it('rejects what is not a date-time', () => {
    expect(parseInstant('yesterday')).toBeUndefined()
    expect(parseInstant(1234)).toBeUndefined()
    expect(parseInstant('')).toBeUndefined()
  })

  it('refuses fields out of range instead of rolling over into another date', () => {
    expect(parseInstant('2026-13-45T99:99:99Z')).toBeUndefined()
    expect(parseInstant('2026-02-29T00:00:00Z')).toBeUndefined()
    expect(parseInstant('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29) * 1000)
    expect(parseInstant('2026-11-22T24:00:00Z')).toBeUndefined()
    expect(parseInstant('2026-11-22T08:10:02+24:00')).toBeUndefined()
  })

  it('refuses instants whose epoch microseconds are not exact (before 1685, after 2255)', () => {
    expect(parseInstant('0050-01-01T00:00:00Z')).toBeUndefined()
    expect(parseInstant('0001-01-01T00:00:00Z')).toBeUndefined()
    expect(parseInstant('9999-12-31T23:59:59.999999Z')).toBeUndefined()
    expect(parseInstant('2200-01-01T00:00:00Z')).toBe(Date.UTC(2200, 0, 1) * 1000)
  })
})

describe('formatInstant', () => {
  it('formats like Python isoformat: microseconds only when non-zero', () => {
    const t = Date.UTC(2026, 10, 22, 8, 10, 2) * 1000
    expect(formatInstant(t)).toBe('2026-11-22T08:10:02+00:00')
    expect(formatInstant(t + 120_000)).toBe('2026-11-22T08:10:02.120000+00:00')
    expect(formatInstant(t + 7)).toBe('2026-11-22T08:10:02.000007+00:00')
  })

  it('round-trips PostgreSQL timestamptz text', () => {
    expect(formatInstant(parsePgTimestamp('2026-11-22 08:10:02.12+00'))).toBe(
      '2026-11-22T08:10:02.120000+00:00',
    )
  })
})
