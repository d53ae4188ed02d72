import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectBrowser,
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

// Regression tests for frames that once stopped, poisoned or thinned the tracker (issue 7).
// Each was sent by an authenticated plugin; the tracker must stay up, keep the socket open,
// refuse the frame with a reason in /metrics.json, and keep serving everyone else.
let t: RunningTracker
beforeAll(async () => {
  t = await startTracker()
})
afterAll(() => t.close())

/** `depth` nested objects as JSON text (too deep for JSON.stringify to write). */
const nestedText = (depth: number): string => `${'{"v":'.repeat(depth)}1${'}'.repeat(depth)}`

const metrics = async () => (await getJson(`${t.url}/metrics.json`)).body

describe('frames that crashed the process', () => {
  it('a quest whose quest_name is {"toString":1} is refused; the tracker and the socket stay up', async () => {
    const ws = await connectPlugin(t.wsUrl)
    const before = await metrics()
    await sendFrames(t.url, ws, [{ type: 'quest', character_name: 'A', quest_name: { toString: 1 } }])
    await sendFrames(t.url, ws, [
      { type: 'quest', character_name: 'A', quest_name: 'Still works', countdown: 3 },
    ])
    const after = await metrics()
    expect(after.bad_by_reason.bad_field - (before.bad_by_reason.bad_field ?? 0)).toBe(1)
    const quests = (await getJson(`${t.url}/quest-status`)).body.quest_data
    expect(quests).toContainEqual(expect.objectContaining({ character_name: 'A', quest_name: 'Still works' }))
    expect(ws.readyState).toBe(ws.OPEN)
    ws.close()
  })

  it('telemetry nested 5 000 deep while a browser is attached is refused before the fan-out stringifies it', async () => {
    const browser = await connectBrowser(t.wsUrl)
    const ws = await connectPlugin(t.wsUrl)
    const before = await metrics()
    const deep = `{"type":"telemetry","character_name":"Deep","x":${nestedText(5_000)}}`
    await sendFrames(t.url, ws, [deep, telemetry('After Deep')])
    await browser.waitFor((m) => m.character_name === 'After Deep')
    const after = await metrics()
    expect(after.bad_by_reason.too_deep - (before.bad_by_reason.too_deep ?? 0)).toBe(1)
    expect(browser.messages.some((m) => m.character_name === 'Deep')).toBe(false)
    ws.close()
    browser.ws.close()
  })
})

describe('frames that poisoned a route or a counter', () => {
  it('a quest whose countdown nests 6 000 deep is refused and /quest-status keeps answering 200', async () => {
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      `{"type":"quest","character_name":"Q","quest_name":"Deep","countdown":${nestedText(6_000)}}`,
    ])
    const res = await getJson(`${t.url}/quest-status`)
    expect(res.status).toBe(200)
    expect(res.body.quest_data.some((q: { quest_name: string }) => q.quest_name === 'Deep')).toBe(false)
    ws.close()
  })

  it('frames typed constructor and toString are counted as numbers in /metrics.json by_type', async () => {
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      { type: 'constructor', character_name: 'Proto' },
      { type: 'toString', character_name: 'Proto' },
      { type: 'toString', character_name: 'Proto' },
      { type: '__proto__', character_name: 'Proto' },
    ])
    const byType = (await metrics()).by_type
    expect(byType.constructor).toBe(1)
    expect(byType.toString).toBe(2)
    expect(Object.entries(byType).every(([, n]) => typeof n === 'number')).toBe(true)
    ws.close()
  })
})

describe('frames that silently thinned valid data', () => {
  it('5 000 frames with a NUL in character_name and a month-13 timestamp cost none of 1 000 valid frames or their kills', async () => {
    const hostile = await startTracker()
    try {
      const ws = await connectPlugin(hostile.wsUrl)
      const frames: unknown[] = []
      for (let i = 0; i < 1_000; i++) {
        frames.push(telemetry('Valid Killer', { kills: i * 3, session_id: 'one' }))
        for (let j = 0; j < 5; j++) {
          frames.push(
            telemetry('Bad\u0000Name', { kills: i, timestamp: '2026-13-45T99:99:99Z', session_id: `s${j}` }),
          )
        }
      }
      const before = (await getJson(`${hostile.url}/metrics.json`)).body
      await sendFrames(hostile.url, ws, frames)
      await hostile.tracker.settle()
      const { rows } = await hostile.tracker.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM telemetry_events WHERE character_name = 'Valid Killer'",
      )
      expect(rows[0]!.n).toBe(1_000)
      const kills = await hostile.tracker.db.query<{ total_kills: number }>(
        "SELECT total_kills FROM char_stats WHERE character_name = 'Valid Killer'",
      )
      expect(kills.rows[0]!.total_kills).toBe(999 * 3)
      const after = (await getJson(`${hostile.url}/metrics.json`)).body
      expect(after.frames_bad - before.frames_bad).toBe(5_000)
      expect(after.bad_by_reason.no_character - (before.bad_by_reason.no_character ?? 0)).toBe(5_000)
      expect(after.persist_rejected).toBe(0)
      expect(after.persist_dropped).toBe(0)
      ws.close()
    } finally {
      await hostile.close()
    }
  })
})
