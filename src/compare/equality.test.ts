import { describe, expect, it } from 'vitest'
import { instantMs, sameJson } from './equality.ts'

describe('one equality for JSON, numbers and instants', () => {
  it('takes 105.0 and 105 as the same number, 105 and 106 as different', () => {
    expect(sameJson(JSON.parse('{"kills": 105.0}'), JSON.parse('{"kills": 105}'))).toBe(true)
    expect(sameJson({ kills: 105 }, { kills: 106 })).toBe(false)
  })

  it('takes two spellings of one instant as equal, a microsecond apart as different', () => {
    expect(sameJson('2026-11-22T08:00:00+00:00', '2026-11-22T08:00:00.000000Z')).toBe(true)
    expect(sameJson('2026-11-22T08:00:00.000001+00:00', '2026-11-22T08:00:00+00:00')).toBe(false)
    expect(sameJson(new Date('2026-11-22T08:00:00Z'), '2026-11-22T08:00:00+00:00')).toBe(true)
  })

  it('compares arrays in order and objects by keys', () => {
    expect(sameJson([1, 2], [2, 1])).toBe(false)
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false)
    expect(sameJson('x', 'x')).toBe(true)
    expect(sameJson('x', 'y')).toBe(false)
    expect(instantMs('not a date')).toBeUndefined()
  })
})
