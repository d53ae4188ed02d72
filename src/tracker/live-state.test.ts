import { describe, expect, it } from 'vitest'
import { LiveState, MAX_CACHED_BYTES, MAX_CHARACTERS, MAX_QUESTS_PER_CHARACTER } from './live-state.ts'

describe('kill deltas', () => {
  it('adds positive differences within a session and starts a new session from its first value', () => {
    const s = new LiveState()
    expect(s.killDelta('A', 's1', 10)).toBe(0)
    expect(s.killDelta('A', 's1', 13)).toBe(3)
    expect(s.killDelta('A', 's1', 13)).toBe(0)
    expect(s.killDelta('A', 's1', 12)).toBe(0)
    expect(s.killDelta('A', 's2', 500)).toBe(0)
    expect(s.killDelta('A', 's2', 502)).toBe(2)
    expect(s.killDelta('B', 's1', 11)).toBe(0)
    expect(s.sessionOf('A')).toBe('s2')
  })
})

describe('session memory', () => {
  it('stays bounded over many logins while interleaved recent sessions still count', () => {
    const s = new LiveState()
    for (let i = 0; i < 1_000; i++) s.killDelta('A', `s${i}`, 0)
    // Two overlapping sessions (a reconnect) both keep their deltas.
    expect(s.killDelta('A', 'x', 1)).toBe(0)
    expect(s.killDelta('A', 'y', 5)).toBe(0)
    expect(s.killDelta('A', 'x', 3)).toBe(2)
    expect(s.killDelta('A', 'y', 9)).toBe(4)
    // A session long gone starts over, as a new one would.
    expect(s.killDelta('A', 's0', 10)).toBe(0)
  })
})

describe('death detection', () => {
  it('fires on vitae 0 → >0, once per 5 minutes per character', () => {
    const s = new LiveState()
    const v = (vitae: number, at: number) =>
      s.observeVitals('A', vitae, { frame: { type: 'vitals', vitae }, bytes: 30 }, at)
    expect(v(0, 0)).toBeUndefined()
    expect(v(5, 1000)?.vitae).toBe(5)
    expect(v(0, 2000)).toBeUndefined()
    expect(v(10, 3000)).toBeUndefined() // within 5 minutes of the last alert
    expect(v(0, 4000)).toBeUndefined()
    expect(v(10, 301_001)?.character_name).toBe('A')
  })

  it('does not fire when the first vitals seen already carry vitae', () => {
    const s = new LiveState()
    expect(s.observeVitals('A', 5, { frame: { type: 'vitals' }, bytes: 20 }, 0)).toBeUndefined()
  })

  it('keeps the last known vitae across vitals frames that carry none', () => {
    const s = new LiveState()
    const v = (vitae: number | null, at: number) =>
      s.observeVitals('A', vitae, { frame: { type: 'vitals' }, bytes: 20 }, at)
    expect(v(0, 0)).toBeUndefined()
    expect(v(null, 1)).toBeUndefined()
    expect(v(5, 2)?.vitae).toBe(5)
    expect(v(null, 3)).toBeUndefined()
    expect(s.observeVitals('B', 5, { frame: { type: 'vitals' }, bytes: 20 }, 4)).toBeUndefined()
  })
})

describe('idle detection', () => {
  it('fires once after 5 minutes idle and re-arms when leaving idle', () => {
    const s = new LiveState()
    expect(s.observeVtState('A', 'Idle', 0)).toBeUndefined()
    expect(s.observeVtState('A', 'IDLE', 299_999)).toBeUndefined()
    expect(s.observeVtState('A', 'idle', 300_000)?.idle_since).toBe(0)
    expect(s.observeVtState('A', 'idle', 900_000)).toBeUndefined()
    expect(s.observeVtState('A', 'Combat', 900_001)).toBeUndefined()
    expect(s.observeVtState('A', 'idle', 1_000_000)).toBeUndefined()
    expect(s.observeVtState('A', 'idle', 1_300_000)?.idle_since).toBe(1_000_000)
  })

  it('counts idle per character, and telemetry without a vt_state breaks the idle stretch', () => {
    const s = new LiveState()
    expect(s.observeVtState('A', 'idle', 0)).toBeUndefined()
    expect(s.observeVtState('B', 'idle', 200_000)).toBeUndefined()
    expect(s.observeVtState('A', null, 250_000)).toBeUndefined()
    expect(s.observeVtState('A', 'idle', 300_000)).toBeUndefined()
    expect(s.observeVtState('B', 'idle', 500_000)?.character_name).toBe('B')
    expect(s.observeVtState('A', 'idle', 600_000)?.idle_since).toBe(300_000)
  })
})

describe('memory bounds', () => {
  it('keeps at most MAX_CHARACTERS characters, evicting the least recently seen', () => {
    const s = new LiveState()
    s.killDelta('Real', 's1', 10)
    for (let i = 0; i < MAX_CHARACTERS + 500; i++) {
      if (i % 1000 === 0) s.killDelta('Real', 's1', 10 + i / 1000) // a real character, seen often
      s.killDelta(`Invented ${i}`, 's1', 1)
      s.observeQuest(`Invented ${i}`, 'q', 1, 50, i)
    }
    expect(s.quests.size).toBe(MAX_CHARACTERS)
    expect(s.killDelta('Real', 's1', 100)).toBeGreaterThan(0)
  })

  it('keeps at most MAX_QUESTS_PER_CHARACTER quests per character', () => {
    const s = new LiveState()
    for (let i = 0; i < MAX_QUESTS_PER_CHARACTER + 10; i++) s.observeQuest('A', `q${i}`, i, 100, i)
    s.observeQuest('A', 'q20', 'again', 100, 1_000)
    expect(s.quests.get('A')?.byName.size).toBe(MAX_QUESTS_PER_CHARACTER)
    expect(s.quests.get('A')?.byName.has('q0')).toBe(false)
    expect(s.quests.get('A')?.bytes).toBe(MAX_QUESTS_PER_CHARACTER * 100)
  })

  it('bounds quests in the bytes of their frames, evicting the least recently seen character', () => {
    const s = new LiveState()
    const big = MAX_CACHED_BYTES / 16
    for (let i = 0; i < 40; i++) s.observeQuest(`Invented ${i}`, 'q', 'x', big, i)
    expect(s.quests.calculatedSize).toBeLessThanOrEqual(MAX_CACHED_BYTES)
    expect(s.quests.has('Invented 39')).toBe(true)
    expect(s.quests.has('Invented 0')).toBe(false)
  })

  it('bounds cached dungeon maps in bytes', () => {
    const s = new LiveState()
    const big = 'x'.repeat(MAX_CACHED_BYTES / 8)
    for (let i = 0; i < 20; i++) s.dungeonMaps.set(`0x${i}`, big)
    expect(s.dungeonMaps.calculatedSize).toBeLessThanOrEqual(MAX_CACHED_BYTES)
    expect(s.dungeonMaps.get('0x19')).toBe(big)
  })
})
