import { describe, expect, it } from 'vitest'
import { REDACTED, Redactor, safeUrl } from './redact.ts'

describe('Redactor', () => {
  it('replaces raw, JSON-escaped and URL-encoded secrets', () => {
    const r = new Redactor(['s3cr"et/x', undefined, 'ab'])
    const line = JSON.stringify({ a: 's3cr"et/x', b: `q=${encodeURIComponent('s3cr"et/x')}`, c: 'ab' })
    const out = r.apply(line)
    expect(out).not.toContain('s3cr')
    expect(out).toContain(REDACTED)
    expect(JSON.parse(out).c).toBe('ab')
  })
})

describe('safeUrl', () => {
  it('drops credentials and the query', () => {
    expect(safeUrl('ws://u:p@host:8765/ws/position?secret=abc#x')).toBe('ws://host:8765/ws/position')
  })
})
