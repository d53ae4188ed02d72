import { describe, expect, it } from 'vitest'
import { SESSION_MAX_AGE_SECONDS, Sessions } from './sessions.ts'

const T0 = Date.UTC(2026, 11, 4)

describe('Sessions', () => {
  it('a token verified once still expires after 30 days (the verified-token cache checks age)', () => {
    const s = new Sessions({ secretKey: 'k' })
    const token = s.mint('alice', T0)
    expect(s.verify(token, T0 + 1000)).toBe('alice')
    expect(s.verify(token, T0 + SESSION_MAX_AGE_SECONDS * 1000)).toBe('alice')
    expect(s.verify(token, T0 + (SESSION_MAX_AGE_SECONDS + 1) * 1000)).toBeUndefined()
    expect(s.verify(token, T0 - 1000)).toBeUndefined()
  })

  it('reads its cookie among others, and reads the configured payload field only', () => {
    const s = new Sessions({ secretKey: 'k', cookieName: 'sid', field: 'user' })
    const header = `theme=dark; sid=${s.mint('bob', T0)}; other=1`
    expect(s.fromCookieHeader(header, T0)).toBe('bob')
    expect(new Sessions({ secretKey: 'k', cookieName: 'sid' }).fromCookieHeader(header, T0)).toBeUndefined()
    expect(s.fromCookieHeader('theme=dark', T0)).toBeUndefined()
  })
})
