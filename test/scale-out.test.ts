import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, sql, type TestDatabase } from './support/db.ts'
import { destroyBus, NATS_URL, uniqueBusName } from './support/nats.ts'
import { connectBrowser, connectPlugin, getJson, SECRET, telemetry } from './support/tracker.ts'
import { spawnTracker, type TrackerProcess } from './support/tracker-process.ts'
import { waitFor } from './support/ws-sink.ts'

/**
 * Issue 11: three tracker processes on one NATS bus serve one fleet. Plugins on one instance,
 * browsers on every instance: same feed, same read API, commands across instances, one write.
 */
describe('scale-out: three tracker processes on one NATS bus', () => {
  let db: TestDatabase
  const bus = uniqueBusName()
  let instances: TrackerProcess[] = []
  const later: TrackerProcess[] = []
  let started: (extra: TrackerProcess[]) => Promise<TrackerProcess>

  beforeAll(async () => {
    db = await createTestDatabase()
    const env = {
      DATABASE_URL: db.url,
      SKIP_SCHEMA_INIT: '1',
      SHARED_SECRET: SECRET,
      NATS_URL,
      NATS_NAME: bus,
      // Commands reach plugins only with side effects on (a shadow suppresses them, §10).
      PLUGIN_SIDE_EFFECTS: '1',
    }
    // Three processes of one instance each (`--workers 1`): the stand-in for three machines.
    const one = { args: ['--workers', '1'] }
    instances = await Promise.all([spawnTracker(env, one), spawnTracker(env, one), spawnTracker(env, one)])
    started = async (extra) => {
      const t = await spawnTracker(env, one)
      extra.push(t)
      return t
    }
  }, 60_000)

  afterAll(async () => {
    await Promise.all([...instances, ...later].map((t) => t.stop()))
    await destroyBus(bus)
    await db.drop()
  })

  it('browsers on every instance get the same feed, filters included, and the same memory-only state', async () => {
    const [a, b, c] = instances as [TrackerProcess, TrackerProcess, TrackerProcess]
    const firehose = await Promise.all(instances.map((t) => connectBrowser(t.wsUrl)))
    const questsOnly = await connectBrowser(c.wsUrl)
    questsOnly.ws.send(JSON.stringify({ type: 'subscribe', message_types: ['quest'] }))
    // The subscription is applied before the next frames: a round-trip through the same socket.
    questsOnly.ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: 'none-yet' }))
    await questsOnly.waitFor((m) => m.type === 'dungeon_map' && m.error === 'not_found')

    const alf = await connectPlugin(a.wsUrl)
    const bea = await connectPlugin(b.wsUrl)
    const fromAlf = [
      telemetry('Alf', { kills: 10 }),
      { type: 'quest', character_name: 'Alf', quest_name: 'Stipend', countdown: '3h 2m' },
      { type: 'dungeon_map', character_name: 'Alf', landblock: '0x01D9', cells: [{ x: 1, y: 2 }] },
      { type: 'share_vitals', character_name: 'Alf', health: 90 },
      { type: 'vitals', character_name: 'Alf', health_current: 90, vitae: 0 },
      telemetry('Alf', { kills: 12 }),
    ]
    const fromBea = [
      telemetry('Bea', { kills: 3, session_id: 'b1' }),
      { type: 'rare', character_name: 'Bea', name: 'Pearl', ew: 1, ns: 2, z: 0 },
      { type: 'chat', character_name: 'Bea', text: 'hello' },
      { type: 'share_vitals', character_name: 'Bea', health: 50 },
    ]
    for (const f of fromAlf) alf.send(JSON.stringify(f))
    for (const f of fromBea) bea.send(JSON.stringify(f))
    const total = fromAlf.length + fromBea.length
    await waitFor('every firehose browser to get every frame', () =>
      firehose.every((br) => br.messages.filter((m) => m.character_name !== undefined).length >= total),
    )

    // Per character, every instance delivers the same messages in the same order; telemetry is typeless.
    const byCharacter = (messages: Record<string, unknown>[], name: string) =>
      messages.filter((m) => m.character_name === name)
    for (const name of ['Alf', 'Bea']) {
      const seen = firehose.map((br) => byCharacter(br.messages, name))
      expect(seen[1]).toEqual(seen[0])
      expect(seen[2]).toEqual(seen[0])
    }
    const alfOnC = byCharacter(firehose[2]!.messages, 'Alf')
    expect(alfOnC.map((m) => m.type)).toEqual([
      undefined,
      'quest',
      'dungeon_map',
      'share_vitals',
      'vitals',
      undefined,
    ])
    expect(alfOnC[5]).toMatchObject({ kills: 12 })
    expect(alfOnC[0]).not.toHaveProperty('type')
    // The quest-only browser on C got Alf's quest from A, and nothing else.
    await questsOnly.waitFor((m) => m.type === 'quest')
    expect(questsOnly.messages.filter((m) => m.character_name !== undefined).map((m) => m.type)).toEqual([
      'quest',
    ])

    // Memory-only state: the same on every instance, wherever the frame arrived.
    const reads = await Promise.all(
      instances.map(async (t) => ({
        quests: (await getJson(`${t.url}/quest-status`)).body,
        peers: (await getJson(`${t.url}/vital-sharing/peers`)).body.peers.map(
          (p: { character_name: string }) => p.character_name,
        ),
      })),
    )
    expect(reads[0]!.quests.quest_data).toHaveLength(1)
    expect(reads[0]!.peers).toEqual(['Alf', 'Bea'])
    expect(reads[1]).toEqual(reads[0])
    expect(reads[2]).toEqual(reads[0])
    // Instance B's share-peer timestamps are those of the frames' receipt, not of B's own.
    expect((await getJson(`${b.url}/vital-sharing/peers`)).body).toEqual(
      (await getJson(`${a.url}/vital-sharing/peers`)).body,
    )

    // A dungeon map sent to A is served to a browser on C.
    questsOnly.ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: '0x01D9' }))
    const map = await questsOnly.waitFor((m) => m.type === 'dungeon_map' && m.landblock === '0x01D9')
    expect(map.cells).toEqual([{ x: 1, y: 2 }])

    // Each frame was written once, by whichever instance held the writer lease.
    await waitFor('rows written', async () => {
      const [r] = await sql(db.url, 'SELECT count(*)::int AS n FROM telemetry_events')
      return r!.n >= 3
    })
    await new Promise((r) => setTimeout(r, 500))
    const [counts] = await sql(
      db.url,
      `SELECT (SELECT count(*)::int FROM telemetry_events) AS telemetry,
              (SELECT count(*)::int FROM rare_events) AS rares,
              (SELECT total_kills::int FROM char_stats WHERE character_name = 'Alf') AS alf_kills`,
    )
    expect(counts).toEqual({ telemetry: 3, rares: 1, alf_kills: 2 })
    const writers = await Promise.all(
      instances.map(async (t) => (await getJson(`${t.url}/metrics.json`)).body.bus.writer_leader as boolean),
    )
    expect(writers.filter(Boolean)).toHaveLength(1)

    // /live (the database's view, refreshed by each instance): the same players everywhere.
    await waitFor(
      '/live on every instance',
      async () => {
        const lives = await Promise.all(instances.map(async (t) => (await getJson(`${t.url}/live`)).body))
        return lives.every((l) => l.players.length === 2 && JSON.stringify(l) === JSON.stringify(lives[0]))
      },
      20_000,
    )
    for (const ws of [alf, bea, questsOnly.ws, ...firehose.map((br) => br.ws)]) ws.close()
  }, 60_000)

  it("a browser's command reaches the plugin on another instance; none holding it is a command_error", async () => {
    const [a, , c] = instances as [TrackerProcess, TrackerProcess, TrackerProcess]
    const browser = await connectBrowser(c.wsUrl)
    const cara = await connectPlugin(a.wsUrl)
    const received: string[] = []
    cara.on('message', (d) => received.push(String(d)))
    // The plugin is registered by its first frame (CONTRACT.md §2).
    cara.send(JSON.stringify(telemetry('Cara')))
    await browser.waitFor((m) => m.character_name === 'Cara')

    const command = '{"type":"command","player_name":"Cara","command":"/vt start",  "extra":[1]}'
    browser.ws.send(command)
    await waitFor('the command at the plugin', () => received.length > 0)
    expect(received).toEqual([command])

    browser.ws.send(JSON.stringify({ type: 'command', player_name: 'Nobody', command: '/vt stop' }))
    const error = await browser.waitFor((m) => m.type === 'command_error')
    expect(error).toEqual({ type: 'command_error', player_name: 'Nobody', error: 'not_connected' })

    // Once the plugin has gone, no instance holds it.
    cara.close()
    await waitFor('the plugin gone', async () => {
      browser.ws.send(JSON.stringify({ type: 'command', player_name: 'Cara', command: '/vt stop' }))
      await new Promise((r) => setTimeout(r, 200))
      return browser.messages.some((m) => m.type === 'command_error' && m.player_name === 'Cara')
    })
    expect(received).toHaveLength(1)
    browser.ws.close()
  }, 30_000)

  it('an instance started later has the fleet state at once, and shows its browsers only what is new', async () => {
    const [a] = instances as [TrackerProcess]
    const plugin = await connectPlugin(a.wsUrl)
    plugin.send(
      JSON.stringify({ type: 'quest', character_name: 'Dara', quest_name: 'Late', countdown: '1h' }),
    )
    await waitFor('the quest on A', async () =>
      (await getJson(`${a.url}/quest-status`)).body.quest_data.some(
        (q: { character_name: string }) => q.character_name === 'Dara',
      ),
    )
    const d = await started(later)
    // Replayed from the stream before it listened: the same memory-only state as the others.
    expect((await getJson(`${d.url}/quest-status`)).body).toEqual(
      (await getJson(`${a.url}/quest-status`)).body,
    )
    expect((await getJson(`${d.url}/vital-sharing/peers`)).body).toEqual(
      (await getJson(`${a.url}/vital-sharing/peers`)).body,
    )
    const browser = await connectBrowser(d.wsUrl)
    await new Promise((r) => setTimeout(r, 500))
    plugin.send(JSON.stringify(telemetry('Dara', { kills: 1 })))
    await browser.waitFor((m) => m.character_name === 'Dara')
    // History is not news: the first frame this browser sees is the one sent after it connected.
    expect(browser.messages.filter((m) => m.character_name !== undefined)).toHaveLength(1)
    expect(browser.messages[0]).toMatchObject({ character_name: 'Dara', kills: 1 })
    expect((await getJson(`${d.url}/metrics.json`)).body.bus.replayed_frames).toBeGreaterThan(10)
    plugin.close()
    browser.ws.close()
  }, 60_000)
})
