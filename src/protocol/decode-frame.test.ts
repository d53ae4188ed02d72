import { describe, expect, it } from 'vitest'
import { type DecodeResult, decodeFrame } from './decode-frame.ts'
import { MAX_JSON_DEPTH } from './json-bounds.ts'

const AT = Date.UTC(2026, 10, 22, 8, 10, 2) * 1000
const decode = (frame: unknown): DecodeResult =>
  decodeFrame(typeof frame === 'string' ? frame : JSON.stringify(frame), AT + 5)
const refused = (frame: unknown) => {
  const r = decode(frame)
  return r.ok ? 'accepted' : r.reason
}
/** A frame whose `field` nests `depth` objects, as text (too deep for JSON.stringify to write). */
const nested = (type: string, field: string, depth: number): string =>
  `{"type":"${type}","character_name":"A","${field}":${'{"v":'.repeat(depth)}1${'}'.repeat(depth)}}`

describe('decodeFrame: the envelope', () => {
  it('refuses what is not a typed JSON object, saying why', () => {
    expect(refused('{nope')).toBe('not_json')
    expect(refused('[1,2]')).toBe('not_object')
    expect(refused('"telemetry"')).toBe('not_object')
    expect(refused('null')).toBe('not_object')
    expect(refused({ character_name: 'A' })).toBe('no_type')
    expect(refused({ type: 7 })).toBe('no_type')
    expect(refused({ type: 'telemetry' })).toBe('no_character')
    expect(refused({ type: 'x'.repeat(129) })).toBe('bad_field')
  })

  it('accepts unknown types (the protocol is additive), even ones named after Object members', () => {
    for (const type of ['brand_new', 'constructor', 'toString', '__proto__']) {
      const r = decode({ type, x: 1 })
      expect(r.ok && r.frame.kind).toBe('other')
      expect(r.ok && r.frame.wireType).toBe(type)
    }
  })

  it('refuses a character_name that is not a storable name, on any type', () => {
    expect(refused({ type: 'chat', character_name: { toString: 1 }, text: 'x' })).toBe('no_character')
    expect(refused({ type: 'telemetry', character_name: 'A\u0000B' })).toBe('no_character')
    expect(refused({ type: 'telemetry', character_name: '' })).toBe('no_character')
    expect(refused({ type: 'telemetry', character_name: 'x'.repeat(10_000) })).toBe('no_character')
  })

  it('bounds nesting before anything recurses, at any depth of the frame', () => {
    expect(refused(nested('chat', 'deep', MAX_JSON_DEPTH))).toBe('too_deep')
    expect(refused(nested('telemetry', 'x', 5_000))).toBe('too_deep')
    expect(refused(nested('quest', 'countdown', 100_000))).toBe('too_deep')
    expect(refused(nested('chat', 'ok', MAX_JSON_DEPTH - 1))).toBe('accepted')
  })
})

describe('decodeFrame: telemetry', () => {
  it('coerces the string-typed numeric fields (CONTRACT.md §1)', () => {
    const r = decode({
      type: 'telemetry',
      character_name: 'Larsson',
      kills_per_hour: '340.5',
      deaths: '57',
      total_deaths: '',
      prismatic_taper_count: 'lots',
      kills: 12.9,
      ew: '1e999',
      timestamp: '2026-11-22T08:10:02Z',
    })
    if (!r.ok || r.frame.kind !== 'telemetry') throw new Error('refused')
    const t = r.frame.record
    expect([t.kills_per_hour, t.deaths, t.total_deaths, t.prismatic_taper_count, t.kills]).toEqual([
      340.5,
      57,
      null,
      null,
      12,
    ])
    expect(t.ew).toBeNull() // "1e999" is Infinity: no column holds it, so null like any unparsable text
    expect(t.timestamp).toBe(AT)
    expect(t.received_at).toBe(AT + 5)
  })

  it('refuses a number literal JSON.parse turns into Infinity', () => {
    const frame = JSON.stringify({ type: 'telemetry', character_name: 'A', ew: 1 }).replace(
      '"ew":1',
      '"ew":1e999',
    )
    expect(refused(frame)).toBe('bad_field')
  })

  it('takes the receive time when the frame has no timestamp, and refuses one that is not a real instant', () => {
    const r = decode({ type: 'telemetry', character_name: 'A' })
    expect(r.ok && r.frame.kind === 'telemetry' && r.frame.record.timestamp).toBe(AT + 5)
    expect(refused({ type: 'telemetry', character_name: 'A', timestamp: '2026-13-45T99:99:99Z' })).toBe(
      'bad_instant',
    )
    expect(refused({ type: 'telemetry', character_name: 'A', timestamp: 12 })).toBe('bad_field')
  })

  it('refuses integers outside their column and fields of the wrong shape', () => {
    expect(refused({ type: 'telemetry', character_name: 'A', kills: 2 ** 31 })).toBe('out_of_range')
    expect(refused({ type: 'telemetry', character_name: 'A', deaths: '-1e12' })).toBe('out_of_range')
    expect(refused({ type: 'telemetry', character_name: 'A', kills: { n: 1 } })).toBe('bad_field')
    expect(refused({ type: 'telemetry', character_name: 'A', vt_state: ['idle'] })).toBe('bad_field')
    expect(refused({ type: 'telemetry', character_name: 'A', char_tag: 'x'.repeat(100_000) })).toBe(
      'bad_field',
    )
  })

  it('strips NUL from stored text fields', () => {
    const r = decode({ type: 'telemetry', character_name: 'A', vt_state: 'Com\u0000bat', session_id: 7 })
    if (!r.ok || r.frame.kind !== 'telemetry') throw new Error('refused')
    expect(r.frame.record.vt_state).toBe('Combat')
    expect(r.frame.record.session_id).toBe('7')
  })
})

describe('decodeFrame: other types', () => {
  it('refuses a quest whose name is not text', () => {
    expect(refused({ type: 'quest', character_name: 'A', quest_name: { toString: 1 } })).toBe('bad_field')
    expect(refused({ type: 'quest', character_name: 'A', quest_name: 'Q', countdown: { a: [1] } })).toBe(
      'accepted',
    )
  })

  it('makes character_stats and combat stats storable as JSONB: NUL and lone surrogates removed', () => {
    const r = decode({
      type: 'character_stats',
      character_name: 'A',
      level: '275',
      total_xp: 2 ** 40,
      'bad\u0000key': 'v\u0000al\ud800',
      properties: { __proto__: 1 },
    })
    if (!r.ok || r.frame.kind !== 'character_stats') throw new Error('refused')
    expect(r.frame.row.level).toBe(275)
    expect(r.frame.row.total_xp).toBe(2 ** 40)
    expect(r.frame.row.stats_json).toBe(
      '{"character_name":"A","level":"275","total_xp":1099511627776,"badkey":"val\ufffd","properties":{}}',
    )
    const c = decode({
      type: 'combat_stats',
      character_name: 'A',
      session_id: 's',
      stats: { 'f\u0000ire': 1 },
    })
    expect(c.ok && c.frame.kind === 'combat_stats' && { ...(c.frame.stats as object) }).toEqual({ fire: 1n })
  })

  it('refuses a portal without coordinates (it cannot be stored)', () => {
    expect(refused({ type: 'portal', character_name: 'A', portal_name: 'P', ns: 'x', ew: 1 })).toBe(
      'bad_field',
    )
  })

  it('keeps the wire type of the inventory alias for browsers', () => {
    const r = decode({ type: 'inventory', character_name: 'A', items: [] })
    expect(r.ok && [r.frame.kind, r.frame.wireType]).toEqual(['full_inventory', 'inventory'])
  })
})

describe('decodeFrame: large frames', () => {
  it('measures the nesting of a large frame on its text, strings and escapes skipped', () => {
    const deep = `{"type":"chat","a":${'['.repeat(400_000)}${']'.repeat(400_000)}}`
    expect(refused(deep)).toBe('too_deep')
    const brackets = '[[[[\\"{{{{'.repeat(20_000)
    expect(refused({ type: 'chat', character_name: 'A', text: brackets })).toBe('accepted')
  })
})
