import { describe, expect, it } from 'vitest'
import {
  deathMessage,
  idleMessage,
  isHttpUrl,
  retryAfterMs,
  webhookBody,
  webhookTarget,
} from './alert-message.ts'

describe('alert messages', () => {
  it('name the character and what happened', () => {
    expect(deathMessage({ character_name: 'Larsson', vitae: 5, at: 0 })).toBe('💀 Larsson died (vitae 5%)')
    expect(deathMessage({ character_name: 'A', vitae: 4.999_9, at: 0 })).toBe('💀 A died (vitae 5%)')
    expect(idleMessage({ character_name: 'Larsson', idle_since: 0, at: 300_000 })).toBe(
      '💤 Larsson has been idle for 5 minutes',
    )
  })

  it('never let a character name ping anyone', () => {
    expect(JSON.parse(webhookBody('💀 @everyone died (vitae 5%)'))).toEqual({
      content: '💀 @everyone died (vitae 5%)',
      allowed_mentions: { parse: [] },
    })
  })
})

describe('webhookTarget', () => {
  it('keeps the host and hides the token-bearing path', () => {
    const shown = webhookTarget('https://discord.com/api/webhooks/123456/sekrit-token?wait=true')
    expect(shown).toBe('https://discord.com/[redacted]')
    expect(webhookTarget('http://127.0.0.1:9999')).toBe('http://127.0.0.1:9999')
    expect(webhookTarget('not a url sekrit')).toBe('[redacted]')
  })

  it('isHttpUrl accepts only http(s)', () => {
    expect(isHttpUrl('https://discord.com/api/webhooks/1/t')).toBe(true)
    expect(isHttpUrl('ftp://h/x')).toBe(false)
    expect(isHttpUrl('discord.com/api/webhooks/1/t')).toBe(false)
  })
})

describe('retryAfterMs', () => {
  it('reads delta seconds (fractional, as Discord sends) and HTTP dates', () => {
    expect(retryAfterMs('1.5')).toBe(1_500)
    expect(retryAfterMs(['2'])).toBe(2_000)
    const now = Date.UTC(2026, 10, 22, 8, 0, 0)
    expect(retryAfterMs('Sun, 22 Nov 2026 08:00:03 GMT', now)).toBe(3_000)
    expect(retryAfterMs('Sun, 22 Nov 2026 07:00:00 GMT', now)).toBe(0)
  })

  it('ignores what it cannot read', () => {
    expect(retryAfterMs(undefined)).toBeUndefined()
    expect(retryAfterMs('')).toBeUndefined()
    expect(retryAfterMs('-1')).toBeUndefined()
    expect(retryAfterMs('soon')).toBeUndefined()
  })
})
