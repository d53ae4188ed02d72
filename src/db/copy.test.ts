import { describe, expect, it } from 'vitest'
import { copyText } from './copy.ts'

describe('copyText', () => {
  it('escapes what COPY text format treats specially, and writes null as \\N', () => {
    expect(copyText('Larsson')).toBe('Larsson')
    expect(copyText('a\tb\nc\\d\re')).toBe('a\\tb\\nc\\\\d\\re')
    expect(copyText(null)).toBe('\\N')
    expect(copyText(undefined)).toBe('\\N')
    expect(copyText(340.5)).toBe('340.5')
    expect(copyText(Number.NaN)).toBe('\\N')
  })
})
