import { describe, expect, it } from 'vitest'
import { LogThrottle } from './log-throttle.ts'

describe('LogThrottle', () => {
  it('says to log the first event per key, then once per interval with the count since', () => {
    const t = new LogThrottle(10_000)
    expect(t.note('a', 0)).toBe(1)
    expect(t.note('b', 1)).toBe(1)
    for (let i = 1; i < 100; i++) expect(t.note('a', i)).toBe(0)
    expect(t.note('a', 10_000)).toBe(100)
    expect(t.note('a', 10_001)).toBe(0)
  })
})
