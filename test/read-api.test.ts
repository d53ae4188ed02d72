import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

/** A clock the test moves by hand: the tracker's window and cache run on it. */
const clock = {
  t: Date.UTC(2026, 10, 22, 12, 0, 0),
  now() {
    return this.t
  },
}
const iso = (ms: number) => new Date(ms).toISOString()

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker({ clock, liveCacheMs: 3_600_000 })
})
afterAll(() => t.close())

describe('/live', () => {
  it('keeps a player online for 30 s of server time, whatever its client clock says', async () => {
    const ws = await connectPlugin(t.wsUrl)
    const start = clock.t
    // Game clocks drift up to ~90 s: one client runs 90 s behind, the other 90 s ahead.
    await sendFrames(t.url, ws, [
      telemetry('Behind', { timestamp: iso(start - 90_000), kills: 5 }),
      telemetry('Ahead', { timestamp: iso(start + 90_000) }),
    ])
    await t.tracker.settle()
    let live = (await getJson(`${t.url}/live`)).body
    expect(live.players.map((p: any) => p.character_name)).toEqual(['Ahead', 'Behind'])

    clock.t = start + 29_000
    await t.tracker.settle()
    live = (await getJson(`${t.url}/live`)).body
    expect(live.players).toHaveLength(2)

    clock.t = start + 31_000
    await t.tracker.settle()
    live = (await getJson(`${t.url}/live`)).body
    expect(live.players).toEqual([])
    ws.close()
  })

  it('serves every telemetry field coerced, Python-isoformat timestamps and the totals', async () => {
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      telemetry('Shape', { timestamp: '2026-11-22T12:00:01.12Z', kills: 3, session_id: 'q' }),
      telemetry('Shape', {
        timestamp: '2026-11-22T12:00:02Z',
        kills: 7,
        session_id: 'q',
        mem_mb: 100.5,
        latency_ms: 12,
      }),
      { type: 'rare', character_name: 'Shape', name: 'Gem', ew: 0, ns: 0, z: 0 },
    ])
    await t.tracker.settle()
    const { body } = await getJson(`${t.url}/live`)
    const p = body.players.find((x: any) => x.character_name === 'Shape')
    expect(p).toEqual({
      character_name: 'Shape',
      char_tag: 'tag',
      session_id: 'q',
      timestamp: '2026-11-22T12:00:02+00:00',
      ew: 12.5,
      ns: -33.25,
      z: 0.5,
      kills: 7,
      kills_per_hour: 340.5,
      onlinetime: '00:10:00',
      deaths: 1,
      total_deaths: 57,
      rares_found: 0,
      prismatic_taper_count: 120,
      vt_state: 'Combat',
      mem_mb: 100.5,
      cpu_pct: null,
      mem_handles: null,
      latency_ms: 12,
      total_kills: 4,
      total_rares: 1,
    })
    ws.close()
  })
})

describe('other read routes', () => {
  it('/trails, /history, /stats, totals, with FastAPI-style errors', async () => {
    const ws = await connectPlugin(t.wsUrl)
    const base = clock.t
    await sendFrames(t.url, ws, [
      telemetry('Walker', { timestamp: iso(base - 700_000), ew: 1, kills: 1 }),
      telemetry('Walker', { timestamp: iso(base - 100_000), ew: 2, kills: 2 }),
      telemetry('Walker', { timestamp: iso(base - 50_000), ew: 3, kills: 4 }),
    ])
    await t.tracker.settle()

    const trails = (await getJson(`${t.url}/trails?seconds=600`)).body.trails.filter(
      (r: any) => r.character_name === 'Walker',
    )
    expect(trails.map((r: any) => r.ew)).toEqual([2, 3])
    expect(Object.keys(trails[0])).toEqual(['character_name', 'ew', 'ns', 'z', 'timestamp'])

    const hist = (await getJson(`${t.url}/history?character=Walker&from=${iso(base - 200_000)}`)).body.data
    expect(hist.map((r: any) => r.kills)).toEqual([2, 4])
    expect(Object.keys(hist[0]).sort()).toEqual([
      'character_name',
      'ew',
      'kills',
      'kills_per_hour',
      'ns',
      'timestamp',
      'z',
    ])

    const stats = await getJson(`${t.url}/stats/Walker`)
    expect(stats.status).toBe(200)
    expect(stats.body.latest_snapshot.ew).toBe(3)
    expect(stats.body.total_kills).toBe(3)
    expect(stats.body.total_rares).toBe(0)

    expect(await getJson(`${t.url}/stats/Nobody%20Here`)).toEqual({
      status: 404,
      body: { detail: 'Character not found' },
    })
    expect((await getJson(`${t.url}/history?from=notadate`)).status).toBe(422)
    expect((await getJson(`${t.url}/trails?seconds=abc`)).status).toBe(422)

    const kills = (await getJson(`${t.url}/total-kills`)).body
    expect(kills.total).toBeGreaterThanOrEqual(7)
    const rares = (await getJson(`${t.url}/total-rares`)).body
    expect(rares).toEqual({ all_time: 1, today: expect.any(Number) })
    ws.close()
  })

  it('refuses a proxied request without a session (internal trust needs no X-Forwarded-For)', async () => {
    const res = await getJson(`${t.url}/live`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })
    expect(res).toEqual({ status: 401, body: { detail: 'Not authenticated' } })
    expect((await getJson(`${t.url}/health`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })).status).toBe(
      200,
    )
  })
})
