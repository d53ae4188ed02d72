import { describe, expect, it } from 'vitest'
import { NotStorableNumber, parsePyJson, pyFloatRepr, stringifyPyJson, toWireValue } from './py-json.ts'

describe('pyFloatRepr', () => {
  it("writes floats as Python's repr does", () => {
    const cases: [number, string][] = [
      [105, '105.0'],
      [0.5, '0.5'],
      [1e-5, '1e-05'],
      [1e-4, '0.0001'],
      [2.5e-7, '2.5e-07'],
      [1e16, '1e+16'],
      [1234567890123456, '1234567890123456.0'],
      [1.5e300, '1.5e+300'],
      [-0, '-0.0'],
      [-340.5, '-340.5'],
      [0.1 + 0.2, '0.30000000000000004'],
      [5e-324, '5e-324'],
    ]
    for (const [x, repr] of cases) expect(pyFloatRepr(x)).toBe(repr)
  })
})

describe('parsePyJson / stringifyPyJson', () => {
  it('round-trips numbers as json.loads then json.dumps do', () => {
    const text =
      '{"a": 105.0, "b": 105, "c": 1e16, "d": 12345678901234567890, "e": [1E-5, -0, 2.50], "f": "é\\u00e9"}'
    expect(stringifyPyJson(parsePyJson(text))).toBe(
      '{"a":105.0,"b":105,"c":1e+16,"d":12345678901234567890,"e":[1e-05,0,2.5],"f":"éé"}',
    )
  })

  it('keeps the last of repeated keys and makes text storable', () => {
    expect(stringifyPyJson(parsePyJson('{"k": 1, "k": 2, "n\\u0000ul": "x\\ud800"}'))).toBe(
      '{"k":2,"nul":"x\ufffd"}',
    )
  })

  it('refuses a float outside the double range, which json.dumps would write as Infinity', () => {
    expect(() => parsePyJson('{"x": 1e400}')).toThrow(NotStorableNumber)
  })

  it('refuses an int json.loads refuses: more than 4 300 digits', () => {
    expect(stringifyPyJson(parsePyJson(`[${'9'.repeat(4300)}]`))).toBe(`[${'9'.repeat(4300)}]`)
    expect(() => parsePyJson(`[${'9'.repeat(4301)}]`)).toThrow(SyntaxError)
  })

  it('serves numbers through JSON.stringify with their Python lexemes', () => {
    expect(
      JSON.stringify(toWireValue(parsePyJson('{"a": 105.0, "d": 12345678901234567890, "z": 1e-05}'))),
    ).toBe('{"a":105.0,"d":12345678901234567890,"z":1e-05}')
  })
})
