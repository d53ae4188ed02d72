import { describe, expect, it } from 'vitest'
import { datetimeParseError, parseLaxInteger } from './pydantic-inputs.ts'

// Expected values are pydantic 2.13's answers for the same text (TypeAdapter(int), TypeAdapter(datetime)).
describe('parseLaxInteger', () => {
  it.each([
    ['600', 600],
    ['-0', 0],
    ['+16', 16],
    [' 16 ', 16],
    ['\t16\n', 16],
    ['16.0', 16],
    ['16.00', 16],
    ['-0.0', 0],
    ['1_000', 1000],
    ['1_0.0', 10],
    ['0016', 16],
    ['-1', -1],
  ])('%j is %d', (text, value) => {
    expect(Object.is(parseLaxInteger(text), value)).toBe(true)
  })

  it.each([
    '',
    ' ',
    '1e12',
    '1e300',
    '0x10',
    '0b1',
    '1.5',
    '1.',
    '.0',
    '16.0_0',
    'Infinity',
    'NaN',
    '1__0',
    '_1',
    '1_',
    '+-1',
    '- 1',
    '1 6',
    '１',
    '٣',
  ])('%j is not an integer', (text) => {
    expect(parseLaxInteger(text)).toBeUndefined()
  })

  it('keeps integers past the range of a double for a bound to refuse', () => {
    expect(parseLaxInteger('9'.repeat(400))).toBe(Number.MAX_VALUE)
    expect(parseLaxInteger(`-${'9'.repeat(400)}`)).toBe(-Number.MAX_VALUE)
    expect(parseLaxInteger('9'.repeat(4301))).toBeUndefined()
  })
})

describe('datetimeParseError', () => {
  it.each([
    ['2026-13-45T99:99:99Z', 'month value is outside expected range of 1-12'],
    ['2026-00-10', 'month value is outside expected range of 1-12'],
    ['2026-01-00', 'day value is outside expected range'],
    ['2026-02-29', 'day value is outside expected range'],
    ['2026-02-30T00:00:00Z', 'day value is outside expected range'],
    ['garbage', 'input is too short'],
    ['1e12', 'input is too short'],
    ['notadatexx', 'invalid character in year'],
    ['2026/01/01', 'invalid date separator, expected `-`'],
    ['20261-01-01', 'invalid date separator, expected `-`'],
    ['2026-01-01T25:00:00Z', 'unexpected extra characters at the end of the input'],
    ['2026-01-01T10:00:00Zjunk', 'unexpected extra characters at the end of the input'],
  ])('%j: %s', (text, reason) => {
    expect(datetimeParseError(text)).toBe(reason)
  })
})
