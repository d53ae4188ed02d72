import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeathEvent, IdleEvent } from '../src/tracker/live-state.ts'
import {
  type Backend,
  connectPlugin,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

// The same behaviour on a real PostgreSQL server and on the embedded default.
describe.each<Backend>(['postgres', 'embedded'])('on %s', (backend) => {
  let t: RunningTracker
  beforeAll(async () => {
    t = await startTracker({}, backend)
  })
  afterAll(() => t.close())

  const rows = async (sql: string, params: unknown[] = []) => (await t.tracker.db.query(sql, params)).rows

  describe('telemetry', () => {
    it('stores coerced fields with the server receive time', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const sentAt = Date.now()
      await sendFrames(t.url, ws, [
        telemetry('Coerced', {
          kills_per_hour: '340.5',
          deaths: '57',
          total_deaths: '',
          prismatic_taper_count: 'x',
          mem_mb: 512.5,
          timestamp: '2020-01-01T00:00:00Z',
        }),
      ])
      await t.tracker.settle()
      const [row] = await rows(
        "SELECT kills_per_hour, deaths, total_deaths, prismatic_taper_count, mem_mb, timestamp, extract(epoch from received_at) * 1000 AS received_ms FROM telemetry_events WHERE character_name = 'Coerced'",
      )
      expect(row.kills_per_hour).toBe(340.5)
      expect(row.deaths).toBe(57)
      expect(row.total_deaths).toBeNull()
      expect(row.prismatic_taper_count).toBeNull()
      expect(row.mem_mb).toBe(512.5)
      expect(new Date(row.timestamp).toISOString()).toBe('2020-01-01T00:00:00.000Z')
      // Server receive time, not the client's 2020 clock.
      expect(Math.abs(Number(row.received_ms) - sentAt)).toBeLessThan(60_000)
      ws.close()
    })

    it('accumulates kill deltas per (character, session), new sessions starting from their first value', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const k = (session: string, kills: number) => telemetry('Killer', { session_id: session, kills })
      await sendFrames(t.url, ws, [
        k('a', 10),
        k('a', 15),
        k('a', 15),
        k('a', 12),
        k('a', 20),
        k('b', 100),
        k('b', 103),
      ])
      await t.tracker.settle()
      const [row] = await rows("SELECT total_kills FROM char_stats WHERE character_name = 'Killer'")
      // a: +5, +0, (decrease ignored), +8 ; b: starts at 100, +3
      expect(Number(row.total_kills)).toBe(16)
      ws.close()
    })
  })

  describe('rares, spawns, portals, character and combat stats', () => {
    it('counts rares in total and per current session', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const rare = {
        type: 'rare',
        character_name: 'Lucky',
        name: 'Pyreal Sword',
        ew: 1,
        ns: 2,
        z: 3,
        timestamp: new Date().toISOString(),
      }
      await sendFrames(t.url, ws, [telemetry('Lucky', { session_id: 's9' }), rare, rare])
      await sendFrames(t.url, ws, [telemetry('Lucky', { session_id: 's10' }), rare])
      await t.tracker.settle()
      expect(await rows("SELECT name FROM rare_events WHERE character_name = 'Lucky'")).toHaveLength(3)
      expect(
        Number(
          (await rows("SELECT total_rares FROM rare_stats WHERE character_name = 'Lucky'"))[0].total_rares,
        ),
      ).toBe(3)
      const sessions = await rows(
        "SELECT session_id, session_rares FROM rare_stats_sessions WHERE character_name = 'Lucky' ORDER BY session_id",
      )
      expect(sessions.map((s) => [s.session_id, Number(s.session_rares)])).toEqual([
        ['s10', 1],
        ['s9', 2],
      ])
      ws.close()
    })

    it('stores spawns and deduplicates portals on coordinates rounded to 0.1, keeping the first discovery', async () => {
      const ws = await connectPlugin(t.wsUrl)
      await sendFrames(t.url, ws, [
        {
          type: 'spawn',
          character_name: 'Scout',
          mob: 'Drudge',
          ew: 1.01,
          ns: 2.02,
          z: 0,
          timestamp: new Date().toISOString(),
        },
        {
          type: 'portal',
          character_name: 'Scout',
          portal_name: 'Gate',
          ns: 10.04,
          ew: 20.01,
          z: 1,
          timestamp: '2026-11-22T10:00:00Z',
        },
        {
          type: 'portal',
          character_name: 'Other',
          portal_name: 'Gate again',
          ns: 10.01,
          ew: 19.99,
          z: 1,
          timestamp: '2026-11-22T10:00:05Z',
        },
        {
          type: 'portal',
          character_name: 'Other',
          portal_name: 'Elsewhere',
          ns: 11,
          ew: 20,
          z: 1,
          timestamp: '2026-11-22T10:00:06Z',
        },
      ])
      await t.tracker.settle()
      expect(await rows("SELECT mob FROM spawn_events WHERE character_name = 'Scout'")).toEqual([
        { mob: 'Drudge' },
      ])
      const portals = await rows('SELECT portal_name, discovered_by FROM portals ORDER BY portal_name')
      expect(portals).toEqual([
        { portal_name: 'Elsewhere', discovered_by: 'Other' },
        { portal_name: 'Gate', discovered_by: 'Scout' },
      ])
      ws.close()
    })

    it('upserts character_stats keeping the whole frame minus type', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const stats = (level: number) => ({
        type: 'character_stats',
        character_name: 'Sage',
        level,
        total_xp: 123456789012,
        deaths: 3,
        attributes: { strength: 100 },
        timestamp: new Date().toISOString(),
      })
      await sendFrames(t.url, ws, [stats(100), stats(101)])
      await t.tracker.settle()
      const [row] = await rows(
        "SELECT level, total_xp, stats_data FROM character_stats WHERE character_name = 'Sage'",
      )
      expect(row.level).toBe(101)
      expect(Number(row.total_xp)).toBe(123456789012)
      expect(row.stats_data.attributes).toEqual({ strength: 100 })
      expect(row.stats_data.type).toBeUndefined()
      ws.close()
    })

    it('keeps the latest combat snapshot per session and sums sessions leaf-wise into the lifetime', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const combat = (session: string, kills: number, fire: number) => ({
        type: 'combat_stats',
        character_name: 'Brawler',
        session_id: session,
        stats: { kills, damage: { fire } },
      })
      await sendFrames(t.url, ws, [combat('s1', 2, 10), combat('s1', 5, 30), combat('s2', 1, 4)])
      await t.tracker.settle()
      const [life] = await rows("SELECT lifetime FROM combat_stats WHERE character_name = 'Brawler'")
      expect(life.lifetime).toEqual({ kills: 6, damage: { fire: 34 } })
      const sessions = await rows(
        "SELECT session_id, data FROM combat_stats_sessions WHERE character_name = 'Brawler' ORDER BY session_id",
      )
      expect(sessions).toEqual([
        { session_id: 's1', data: { kills: 5, damage: { fire: 30 } } },
        { session_id: 's2', data: { kills: 1, damage: { fire: 4 } } },
      ])
      ws.close()
    })

    it('refuses at the edge a value its column cannot hold, storing its neighbours', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const before = t.tracker.metrics() as { bad_by_reason: Record<string, number> }
      const outOfRange = before.bad_by_reason.out_of_range ?? 0
      const stats = (name: string, level: number) => ({
        type: 'character_stats',
        character_name: name,
        level,
      })
      // level is an INTEGER column: 99 999 999 999 does not fit, so the frame is refused, not stored.
      await sendFrames(t.url, ws, [stats('Fine A', 5), stats('Overflow', 99_999_999_999), stats('Fine B', 6)])
      await t.tracker.settle()
      const names = await rows(
        "SELECT character_name FROM character_stats WHERE character_name IN ('Fine A', 'Overflow', 'Fine B') ORDER BY 1",
      )
      expect(names.map((r) => r.character_name)).toEqual(['Fine A', 'Fine B'])
      const after = t.tracker.metrics() as { bad_by_reason: Record<string, number>; persist_rejected: number }
      expect(after.bad_by_reason.out_of_range).toBe(outOfRange + 1)
      expect(after.persist_rejected).toBe(0)
      ws.close()
    })

    it('persists nothing for memory-only types', async () => {
      const ws = await connectPlugin(t.wsUrl)
      const before = (await rows('SELECT count(*)::int AS n FROM telemetry_events'))[0].n
      await sendFrames(t.url, ws, [
        { type: 'vitals', character_name: 'Mem', health_current: 10, vitae: 0 },
        { type: 'chat', character_name: 'Mem', text: 'hi' },
        { type: 'quest', character_name: 'Mem', quest_name: 'Q', countdown: '1h' },
        { type: 'nearby_objects', character_name: 'Mem', objects: [] },
        { type: 'equipment_cantrip_state', character_name: 'Mem', items: [] },
        { type: 'dungeon_map', character_name: 'Mem', landblock: '0x1', tiles: [] },
        { type: 'brand_new_type', character_name: 'Mem' },
      ])
      await t.tracker.settle()
      expect((await rows('SELECT count(*)::int AS n FROM telemetry_events'))[0].n).toBe(before)
      ws.close()
    })
  })

  describe('detections', () => {
    it('raises a death event when vitae goes from 0 to above 0', async () => {
      const deaths: DeathEvent[] = []
      t.tracker.ingest.on('death', (e) => deaths.push(e))
      const ws = await connectPlugin(t.wsUrl)
      const vitals = (vitae: number | string) => ({
        type: 'vitals',
        character_name: 'Mortal',
        health_current: 50,
        vitae,
      })
      await sendFrames(t.url, ws, [vitals(0), vitals(0), vitals('5'), vitals(5)])
      expect(deaths.map((d) => [d.character_name, d.vitae])).toEqual([['Mortal', 5]])
      ws.close()
    })

    it('raises an idle event after 5 minutes idle on the tracker clock', async () => {
      const clock = {
        t: Date.UTC(2026, 10, 22),
        now() {
          return this.t
        },
      }
      const idle = await startTracker({ clock }, backend)
      try {
        const events: IdleEvent[] = []
        idle.tracker.ingest.on('idle', (e) => events.push(e))
        const ws = await connectPlugin(idle.wsUrl)
        await sendFrames(idle.url, ws, [telemetry('Afk', { vt_state: 'Idle' })])
        clock.t += 4 * 60_000
        await sendFrames(idle.url, ws, [telemetry('Afk', { vt_state: 'idle' })])
        expect(events).toEqual([])
        clock.t += 60_000
        await sendFrames(idle.url, ws, [
          telemetry('Afk', { vt_state: 'idle' }),
          telemetry('Afk', { vt_state: 'idle' }),
        ])
        expect(events.map((e) => e.character_name)).toEqual(['Afk'])
        ws.close()
      } finally {
        await idle.close()
      }
    })
  })
})
