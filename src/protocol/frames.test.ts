import { describe, expect, it } from 'vitest'
import { parseFrame, toTelemetryRecord } from './frames.ts'

describe('parseFrame', () => {
  it('refuses what is not a typed JSON object, saying why', () => {
    expect(parseFrame('{nope')).toEqual({ ok: false, reason: 'not_json' })
    expect(parseFrame('[1,2]')).toEqual({ ok: false, reason: 'not_object' })
    expect(parseFrame('"telemetry"')).toEqual({ ok: false, reason: 'not_object' })
    expect(parseFrame('{"character_name":"A"}')).toEqual({ ok: false, reason: 'no_type' })
    expect(parseFrame('{"type":"telemetry"}')).toEqual({ ok: false, reason: 'no_character' })
  })

  it('accepts unknown types (the protocol is additive)', () => {
    const r = parseFrame('{"type":"brand_new","x":1}')
    expect(r.ok && r.frame.type).toBe('brand_new')
  })
})

describe('toTelemetryRecord', () => {
  it('coerces the string-typed numeric fields', () => {
    const r = toTelemetryRecord(
      {
        type: 'telemetry',
        character_name: 'Larsson',
        kills_per_hour: '340.5',
        deaths: '57',
        total_deaths: '',
        prismatic_taper_count: 'lots',
        kills: 12,
        timestamp: '2026-11-22T08:10:02Z',
      },
      5,
    )
    expect(r.kills_per_hour).toBe(340.5)
    expect(r.deaths).toBe(57)
    expect(r.total_deaths).toBeNull()
    expect(r.prismatic_taper_count).toBeNull()
    expect(r.kills).toBe(12)
    expect(r.timestamp).toBe(Date.UTC(2026, 10, 22, 8, 10, 2) * 1000)
    expect(r.received_at).toBe(5)
  })
})
