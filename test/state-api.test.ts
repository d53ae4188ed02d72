import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

// A stand-in game-status page on loopback for the /server-health probe.
const statusPage = createServer((_req, res) => res.end('ok'))
let t: RunningTracker
beforeAll(async () => {
  await new Promise<void>((r) => statusPage.listen(0, '127.0.0.1', r))
  const { port } = statusPage.address() as AddressInfo
  t = await startTracker({
    serverHealthUrl: `http://127.0.0.1:${port}/`,
    serverName: 'Coldeve',
    buildVersion: '2026.11.22.1200-abc1234',
  })
  const ws = await connectPlugin(t.wsUrl)
  const now = new Date().toISOString()
  await sendFrames(t.url, ws, [
    telemetry('Zed', { session_id: 'z1' }),
    telemetry('Amy', { session_id: 'a1' }),
    {
      type: 'character_stats',
      character_name: 'Zed',
      level: 80,
      timestamp: '2026-11-22T10:00:00Z',
      skills: { melee: 300 },
    },
    { type: 'character_stats', character_name: 'Amy', level: 275, timestamp: '2026-11-22T10:00:00.5Z' },
    {
      type: 'combat_stats',
      character_name: 'Amy',
      session_id: 'a1',
      stats: { kills: 3, damage: { fire: 12.5 } },
    },
    // Zed's client clock is 20 s slow: last_updated is the frame's own instant, as the primary stamps it.
    {
      type: 'quest',
      character_name: 'Zed',
      quest_name: 'Stipend',
      countdown: '2h',
      timestamp: '2026-11-24T21:08:53.032121Z',
    },
    { type: 'quest', character_name: 'Amy', quest_name: 'Colo', countdown: 'ready', timestamp: 'soon' },
    // Discovered out of the /portals order, which is by name, then ns, then ew.
    { type: 'portal', character_name: 'Amy', portal_name: 'Town', ns: 1.04, ew: 2.01, z: 0, timestamp: now },
    { type: 'portal', character_name: 'Zed', portal_name: 'Annex', ns: 9, ew: 9, z: 0, timestamp: now },
    { type: 'portal', character_name: 'Zed', portal_name: 'Town', ns: -3, ew: 0, z: 0, timestamp: now },
    { type: 'portal', character_name: 'Amy', portal_name: 'Town', ns: 1.04, ew: -7, z: 0, timestamp: now },
    ...[0, 1, 2].map(() => ({
      type: 'spawn',
      character_name: 'Amy',
      mob: 'Drudge',
      ew: 5.01,
      ns: 6.04,
      z: 0,
      timestamp: now,
    })),
    { type: 'spawn', character_name: 'Amy', mob: 'Wasp', ew: 9, ns: 9, z: 0, timestamp: now },
    { type: 'share_vitals', character_name: 'Zed', health: 10 },
  ])
  await t.tracker.settle()
  ws.close()
})
afterAll(async () => {
  await t.close()
  statusPage.close()
})

describe('state routes (CONTRACT §4)', () => {
  it('/character-stats list and one character, 404 when none', async () => {
    expect((await getJson(`${t.url}/character-stats/list`)).body).toEqual({
      characters: [
        { character_name: 'Amy', level: 275, timestamp: '2026-11-22T10:00:00.500000+00:00' },
        { character_name: 'Zed', level: 80, timestamp: '2026-11-22T10:00:00+00:00' },
      ],
    })
    const zed = (await getJson(`${t.url}/character-stats/Zed`)).body
    expect(zed).toMatchObject({
      character_name: 'Zed',
      level: 80,
      skills: { melee: 300 },
      timestamp: '2026-11-22T10:00:00+00:00',
    })
    expect(zed.type).toBeUndefined()
    expect((await getJson(`${t.url}/character-stats/Nobody`)).status).toBe(404)
  })

  it('/combat-stats with the current session and the lifetime', async () => {
    expect((await getJson(`${t.url}/combat-stats/Amy`)).body).toEqual({
      character_name: 'Amy',
      session: { session_id: 'a1', kills: 3, damage: { fire: 12.5 } },
      lifetime: { kills: 3, damage: { fire: 12.5 } },
    })
    expect((await getJson(`${t.url}/combat-stats/Zed`)).body).toEqual({
      character_name: 'Zed',
      session: null,
      lifetime: null,
    })
  })

  it('/quest-status, /portals, /spawns/heatmap, /vital-sharing/peers', async () => {
    const quests = (await getJson(`${t.url}/quest-status`)).body.quest_data
    expect(quests.map((q: any) => [q.character_name, q.quest_name, q.countdown])).toEqual([
      ['Amy', 'Colo', 'ready'],
      ['Zed', 'Stipend', '2h'],
    ])
    expect(quests[1].last_updated).toBe('2026-11-24T21:08:53.032121+00:00')
    // An unparsable quest timestamp falls back to the receive time; the frame is kept.
    expect(Math.abs(Date.parse(quests[0].last_updated) - Date.now())).toBeLessThan(60_000)
    const portals = (await getJson(`${t.url}/portals`)).body.portals
    expect(portals[0]).toEqual({
      portal_name: 'Annex',
      ns: 9,
      ew: 9,
      z: 0,
      discovered_at: expect.stringMatching(/\+00:00$/),
      discovered_by: 'Zed',
    })
    expect(portals.map((p: any) => [p.portal_name, p.ns, p.ew, p.discovered_by])).toEqual([
      ['Annex', 9, 9, 'Zed'],
      ['Town', -3, 0, 'Zed'],
      ['Town', 1.04, -7, 'Amy'],
      ['Town', 1.04, 2.01, 'Amy'],
    ])
    expect((await getJson(`${t.url}/spawns/heatmap?hours=1`)).body).toEqual({
      spawn_points: [
        { ew: 5, ns: 6, intensity: 3 },
        { ew: 9, ns: 9, intensity: 1 },
      ],
      hours_window: 1,
      total_points: 2,
    })
    expect((await getJson(`${t.url}/spawns/heatmap?hours=-1`)).status).toBe(422)
    const peers = (await getJson(`${t.url}/vital-sharing/peers`)).body.peers
    expect(peers.map((p: any) => p.character_name)).toEqual(['Zed'])
  })

  it('/server-health from the probe, /api-version from BUILD_VERSION', async () => {
    const health = (await getJson(`${t.url}/server-health`)).body
    expect(health).toMatchObject({ server_name: 'Coldeve', status: 'up', player_count: 2 })
    expect(health.latency_ms).toBeGreaterThanOrEqual(0)
    expect(health.last_check).toMatch(/\+00:00$/)
    expect((await getJson(`${t.url}/api-version`)).body).toEqual({ version: '2026.11.22.1200-abc1234' })
  })

  it('/server-health without a probe URL reports player_count null while players are live, as the primary does', async () => {
    const unprobed = await startTracker({ serverName: 'Coldeve' })
    try {
      const ws = await connectPlugin(unprobed.wsUrl)
      await sendFrames(unprobed.url, ws, [telemetry('Amy')])
      await unprobed.tracker.settle()
      ws.close()
      expect((await getJson(`${unprobed.url}/live`)).body.players).toHaveLength(1)
      expect((await getJson(`${unprobed.url}/server-health`)).body).toEqual({
        server_name: 'Coldeve',
        status: 'unknown',
        latency_ms: null,
        player_count: null,
        last_check: null,
      })
    } finally {
      await unprobed.close()
    }
  })
})
