import { describe, expect, it } from 'vitest'
import { type FleetEvent, FleetModel } from './fleet-model.ts'
import { CONTRACT_EVENT_TYPES } from '../protocol/frames.ts'

const START = Date.UTC(2026, 10, 22, 8, 0, 0)
const run = (seed: number, minutes: number): FleetEvent[] =>
  new FleetModel({ seed, characters: 4, startMs: START }).advance(START + minutes * 60_000)

describe('FleetModel', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    expect(run(42, 3)).toEqual(run(42, 3))
    expect(run(42, 3)).not.toEqual(run(43, 3))
  })

  it('gives the same events whether advanced in one step or many', () => {
    const stepped = new FleetModel({ seed: 7, characters: 3, startMs: START })
    const events: FleetEvent[] = []
    for (let t = START; t <= START + 120_000; t += 250) events.push(...stepped.advance(t))
    expect(events).toEqual(
      new FleetModel({ seed: 7, characters: 3, startMs: START }).advance(START + 120_000),
    )
  })

  it('produces every event type of the contract, with the string-typed numbers', () => {
    const events = run(1, 12)
    const types = new Set(events.flatMap((e) => (e.kind === 'frame' ? [e.type] : [])))
    for (const type of [...CONTRACT_EVENT_TYPES, 'share_vitals', 'future_event']) {
      expect(types, type).toContain(type)
    }
    const telemetry = events.find((e) => e.kind === 'frame' && e.type === 'telemetry')
    const frame = JSON.parse((telemetry as { data: string }).data)
    for (const key of ['kills_per_hour', 'deaths', 'total_deaths', 'prismatic_taper_count']) {
      expect(typeof frame[key], key).toBe('string')
    }
  })

  it('has sessions (reconnects with a new session id) and vitae transitions', () => {
    const events = run(3, 15)
    const connects = events.filter((e) => e.kind === 'connect' && e.character === 'Larsson')
    expect(connects.length).toBeGreaterThan(1)
    const sessions = new Set(
      events
        .filter((e) => e.kind === 'frame' && e.type === 'telemetry' && e.character === 'Larsson')
        .map((e) => JSON.parse((e as { data: string }).data).session_id),
    )
    expect(sessions.size).toBeGreaterThan(1)
    const vitae = events
      .filter((e) => e.kind === 'frame' && e.type === 'vitals')
      .map((e) => JSON.parse((e as { data: string }).data).vitae as number)
    expect(vitae.some((v) => v > 0)).toBe(true)
    expect(vitae.some((v) => v === 0)).toBe(true)
  })
})
