import { describe, expect, it } from 'vitest'
import { encodeEnvelopes, parseEnvelope, splitEnvelopes } from './envelope.ts'

describe('tee envelopes', () => {
  it('round-trips a batch, keeping a raw frame byte for byte', () => {
    const raw = '{"type":"chat","character_name":"Larsson","text":"a\\nb \u00e9"}'
    const message = encodeEnvelopes([
      { k: 'hello', s: 'abc', v: 1 },
      { k: 'open', c: '7', t: 1000 },
      { k: 'frame', c: '7', t: 1001.5, d: raw },
      { k: 'close', c: '7', t: 1002, code: 1001 },
    ])
    const parsed = splitEnvelopes(message).map(parseEnvelope)
    expect(parsed).toEqual([
      { k: 'hello', s: 'abc', v: 1 },
      { k: 'open', c: '7', t: 1000 },
      { k: 'frame', c: '7', t: 1001.5, d: raw },
      { k: 'close', c: '7', t: 1002, code: 1001 },
    ])
  })

  it('accepts numeric connection ids, as the Python sender sends them', () => {
    expect(parseEnvelope('{"k":"frame","c":3,"t":5,"d":"x"}')).toEqual({ k: 'frame', c: '3', t: 5, d: 'x' })
  })

  it('rejects malformed envelopes', () => {
    for (const line of [
      'nope',
      '[]',
      '{"k":"frame","c":1,"t":2}',
      '{"k":"open","t":2}',
      '{"k":"zzz","c":1,"t":1}',
    ]) {
      expect(parseEnvelope(line)).toBeUndefined()
    }
  })
})
