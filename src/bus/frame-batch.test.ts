import { describe, expect, it } from 'vitest'
import { type BusFrame, decodeBatch, encodeBatch } from './frame-batch.ts'

describe('bus frame batches', () => {
  it('carries text, receive instant and derived meta through unchanged', () => {
    const frames: BusFrame[] = [
      {
        receivedAt: 1_764_900_000_123_456,
        text: '{"type":"telemetry","character_name":"Ålf ✓"}',
        meta: { killsDelta: 0, session: 's1' },
      },
      { receivedAt: 1, text: '', meta: { killsDelta: null, session: null } },
      { receivedAt: 2.5, text: 'x'.repeat(70_000), meta: { killsDelta: 12, session: 'sessión' } },
    ]
    expect(decodeBatch(encodeBatch(frames))).toEqual(frames)
  })

  it('refuses a truncated body instead of inventing frames', () => {
    const body = encodeBatch([
      { receivedAt: 1, text: '{"type":"rare"}', meta: { killsDelta: null, session: 'a' } },
    ])
    expect(() => decodeBatch(body.subarray(0, body.length - 3))).toThrow(RangeError)
  })
})
