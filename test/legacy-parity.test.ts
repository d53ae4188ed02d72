import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { BackendClient } from '../src/compare/poller.ts'
import type { SweepResult } from '../src/compare/sweep.ts'
import { runSweep } from '../src/compare/sweep.ts'
import { type LiveFeeds, openLiveFeeds, type WsLiveReport } from '../src/compare/ws-live.ts'
import { withDatabase } from '../src/db/pool.ts'
import { TimedSerializer } from '../src/protocol/itsdangerous.ts'
import { projectManifest, projectRules, silent } from './compare-helpers.ts'
import { PROXIED } from './support/auth.ts'
import { overlord } from './support/cli.ts'
import { adminQuery, freshDatabaseName, TEST_SERVER_URL } from './support/db.ts'
import { type LegacyTracker, startLegacyTracker } from './support/legacy-tracker.ts'
import {
  closeCode,
  connectBrowser,
  getJson,
  type RunningTracker,
  SECRET,
  startTracker,
  telemetry,
} from './support/tracker.ts'
import { freePort, waitFor } from './support/ws-sink.ts'

// The Python legacy tracker (the primary) and the TypeScript tracker (the shadow) fed the same plugin
// frames the way the live system feeds them: plugins connect to Python only; Python's drop-in tee
// (legacy/overlord_tee.py, wired as legacy/README.md says) mirrors every raw frame to a real
// `overlord-ts tee mirror`, which replays it into the TypeScript tracker. The comparison engine then
// sweeps both, HTTP reads and the /ws/live feed, and must find parity.

const TEE_SECRET = 'legacy-parity-tee-secret'
const MARGIN_MS = 250
const CHARACTERS = ['Larsson', 'Älva Sköldmö', 'Zoë Quill']
const T0 = Date.now() - 120_000
/**
 * An instant `s` seconds into the session, `character` ms apart per character: game clocks differ,
 * and rows of two characters at the same instant have no order the contract fixes (see /history).
 */
const at = (s: number, character = 0) => new Date(T0 + s * 1000 + character * 37).toISOString()
/** The instant as the contract writes it in responses (CONTRACT.md §1). */
const served = (iso: string) => iso.replace(/\.000Z$/, '+00:00').replace(/Z$/, '000+00:00')

/** One character's traffic: every frame type, in the order a game session sends them. */
function session(who: string, i: number): Record<string, unknown>[] {
  const sid = `session-${i}`
  const landblock = `0x${(0xa9b0 + i).toString(16).toUpperCase()}0000`
  return [
    telemetry(who, { session_id: sid, timestamp: at(0, i), kills: 5, ew: 10 + i, ns: -20 - i }),
    {
      type: 'vitals',
      character_name: who,
      timestamp: at(1, i),
      health_current: 90,
      health_max: 100,
      health_percentage: 90,
      stamina_current: 50,
      stamina_max: 60,
      mana_current: 10,
      mana_max: 20,
      vitae: 0,
    },
    { type: 'quest', character_name: who, timestamp: at(2, i), quest_name: 'Stipend', countdown: '01:00:00' },
    { type: 'quest', character_name: who, timestamp: at(3, i), quest_name: 'Colosseum', countdown: 'Ready' },
    {
      type: 'share_vitals',
      character_name: who,
      timestamp: at(4, i),
      health_percentage: 90,
      stamina_percentage: 80,
      mana_percentage: 50,
    },
    {
      type: 'portal',
      character_name: who,
      timestamp: at(5, i),
      portal_name: `Gate ${i}`,
      ns: 40.1 + i,
      ew: 7,
      z: 0,
    },
    // The same coordinates rounded to 0.1: the first discovery is kept (CONTRACT.md §2).
    {
      type: 'portal',
      character_name: who,
      timestamp: at(6, i),
      portal_name: 'Later name',
      ns: 40.12 + i,
      ew: 7.04,
      z: 1,
    },
    { type: 'spawn', character_name: who, timestamp: at(7, i), mob: 'Drudge', ew: 3.14 + i, ns: 4.04, z: 0 },
    { type: 'spawn', character_name: who, timestamp: at(8, i), mob: 'Drudge', ew: 3.12 + i, ns: 4.01, z: 0 },
    { type: 'spawn', character_name: who, timestamp: at(9, i), mob: 'Mosswart', ew: -1.5, ns: 60 + i, z: 0 },
    { type: 'rare', character_name: who, timestamp: at(10, i), name: 'Pyreal Sword', ew: 1.5, ns: -2, z: 0 },
    {
      type: 'character_stats',
      character_name: who,
      timestamp: at(11, i),
      level: 200 + i,
      total_xp: 191_226_310_247,
      unassigned_xp: 0,
      luminance_earned: 500_000,
      luminance_total: 1_000_000,
      deaths: 3,
      attributes: { strength: { base: 100, creation: 10 }, quickness: { base: 290, creation: 90 } },
      vitals: { health: { base: 400, current: 380 } },
      skills: { war_magic: { base: 450, training: 'Specialized' } },
      allegiance: { name: 'Knights', rank: 4, monarch: 'Aldo' },
      properties: { 181: 5, burden_ratio: 1.5 },
      titles: ['Sentinel', 'Hero'],
    },
    {
      type: 'combat_stats',
      character_name: who,
      session_id: sid,
      timestamp: at(12, i),
      stats: { damage: { fire: 100, cold: 20 }, monsters: { Drudge: { kills: 2, damage: 50 } } },
    },
    {
      type: 'dungeon_map',
      character_name: who,
      timestamp: at(13, i),
      landblock,
      tiles: [{ x: 1, y: 2, id: 300 + i }],
    },
    { type: 'chat', character_name: who, timestamp: at(14, i), text: `hello from ${who}`, color: 5 },
    { type: 'chat', character_name: who, text: 'no timestamp here', channel: 'General' },
    telemetry(who, { session_id: sid, timestamp: at(15, i), kills: 12, ew: 11 + i, ns: -21 - i }),
    {
      type: 'combat_stats',
      character_name: who,
      session_id: sid,
      timestamp: at(16, i),
      stats: { damage: { fire: 160, cold: 20, acid: 4 }, monsters: { Drudge: { kills: 3, damage: 75 } } },
    },
    {
      type: 'quest',
      character_name: who,
      timestamp: at(17, i),
      quest_name: 'Stipend',
      countdown: '00:59:00',
    },
    { type: 'rare', character_name: who, timestamp: at(18, i), name: 'Gem of Power', ew: 1.5, ns: -2, z: 0 },
  ]
}

const SUBSCRIBED = ['rare', 'chat', 'telemetry']
const typeOf = (f: Record<string, unknown>) => f.type as string

/** Starts the real `overlord-ts tee mirror` CLI and resolves once it listens. */
async function startTeeMirror(
  port: number,
  shadowWsUrl: string,
): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      'src/cli/main.ts',
      'tee',
      'mirror',
      '--listen',
      `127.0.0.1:${port}`,
      '--shadow',
      `${shadowWsUrl}/ws/position`,
    ],
    {
      env: { PATH: process.env.PATH ?? '', TEE_SECRET, SHADOW_PLUGIN_SECRET: SECRET, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d
  })
  const exited = once(child, 'exit')
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      if (line.startsWith('tee mirror listening on')) resolve()
    })
    exited.then(([code]) => reject(new Error(`tee mirror exited (${code}):\n${stderr}`)), reject)
  })
  return {
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

async function plugin(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/position`, { headers: { 'X-Plugin-Secret': SECRET } })
  await once(ws, 'open')
  return ws
}

describe('the Python legacy tracker and the TypeScript tracker, fed through the tee', () => {
  const legacyDb = freshDatabaseName()
  const frames = new Map(CHARACTERS.map((who, i) => [who, session(who, i)]))
  const all = [...frames.values()].flat()
  let shadow: RunningTracker
  let legacy: LegacyTracker
  let tee: Awaited<ReturnType<typeof startTeeMirror>>
  let teeMetricsUrl: string
  let reports: string
  const plugins: WebSocket[] = []

  beforeAll(async () => {
    shadow = await startTracker()
    const port = await freePort()
    tee = await startTeeMirror(port, shadow.wsUrl)
    teeMetricsUrl = `http://127.0.0.1:${port}/metrics`
    legacy = await startLegacyTracker({
      databaseUrl: withDatabase(TEST_SERVER_URL, legacyDb),
      secret: SECRET,
      tee: { url: `ws://127.0.0.1:${port}/tee`, secret: TEE_SECRET },
    })
    reports = await mkdtemp(join(tmpdir(), 'legacy-parity-'))
  }, 60_000)

  afterAll(async () => {
    for (const ws of plugins) ws.close()
    await legacy?.stop()
    await tee?.stop()
    await shadow?.close()
    await adminQuery(`DROP DATABASE IF EXISTS ${legacyDb} WITH (FORCE)`)
    if (reports !== undefined) await rm(reports, { recursive: true, force: true })
  })

  /** Sends each character's frames on its own plugin socket to Python; waits until both trackers have them. */
  async function feed(batches: Map<string, Record<string, unknown>[]>): Promise<void> {
    const before = { legacy: (await legacy.metrics()).frames_handled, shadow: await shadowReceived() }
    const count = [...batches.values()].reduce((n, b) => n + b.length, 0)
    let i = 0
    for (const batch of batches.values()) {
      plugins[i] ??= await plugin(legacy.port)
      for (const f of batch) plugins[i]!.send(JSON.stringify(f))
      i += 1
    }
    await waitFor(
      'Python to handle every frame',
      async () => (await legacy.metrics()).frames_handled >= before.legacy + count,
    )
    await waitFor(
      'the tee to bring every frame to the TypeScript tracker',
      async () => (await shadowReceived()) >= before.shadow + count,
    )
    await shadow.tracker.settle()
  }
  const shadowReceived = async () =>
    (await getJson(`${shadow.url}/metrics.json`)).body.frames_received as number

  /**
   * Waits until Python's 5 s `/live` cache shows every character at its latest telemetry, with the
   * kill and rare totals of its last frames (a refresh may fall between a frame's inserts).
   */
  async function pythonLiveAt(timestamp: (character: string) => string): Promise<void> {
    const totals = (players: Record<string, unknown>[]) =>
      players.map((p) => [p.character_name, p.total_kills, p.total_rares])
    await waitFor(
      "Python's /live cache to refresh",
      async () => {
        const players = (await getJson(`${legacy.url}/live`)).body.players as Record<string, unknown>[]
        const settled = (await getJson(`${shadow.url}/live`)).body.players as Record<string, unknown>[]
        return (
          players.length === CHARACTERS.length &&
          players.every(
            (p) => Date.parse(String(p.timestamp)) === Date.parse(timestamp(String(p.character_name))),
          ) &&
          JSON.stringify(totals(players)) === JSON.stringify(totals(settled))
        )
      },
      15_000,
    )
  }

  it('sweeps to PARITY on every endpoint and on /ws/live, every frame type paired', async () => {
    const feeds: LiveFeeds = await openLiveFeeds({
      primary: { url: legacy.url },
      shadow: { url: shadow.url },
      logger: silent,
      lagMarginMs: MARGIN_MS,
      subscribeTypes: SUBSCRIBED,
    })
    let result: SweepResult
    let live: WsLiveReport | undefined
    try {
      // Past the sockets' start edge, where a message only one side has is counted as lag.
      const opened = Date.now()
      await waitFor('the start edge to pass', () => Date.now() - opened > MARGIN_MS)
      await feed(frames)
      const subscribed = all.filter((f) => SUBSCRIBED.includes(typeOf(f))).length
      await waitFor('every frame on both feeds', () =>
        (['primary', 'shadow'] as const).every((side) => {
          const r = feeds.received()[side]
          return r.firehose >= all.length && r.subscribed >= subscribed
        }),
      )
      await waitFor('the window edge to pass', () => {
        const r = feeds.received()
        return Date.now() - Math.max(r.primary.lastAt ?? 0, r.shadow.lastAt ?? 0) > MARGIN_MS
      })
      await pythonLiveAt((who) => at(15, CHARACTERS.indexOf(who)))

      const primary = new BackendClient({ side: 'primary', url: legacy.url, logger: silent })
      const shadowClient = new BackendClient({ side: 'shadow', url: shadow.url, logger: silent })
      try {
        result = await runSweep({
          primary,
          shadow: shadowClient,
          rules: await projectRules(),
          manifest: await projectManifest(),
          logger: silent,
          teeMetricsUrl,
          liveFeed: async () => {
            live = await feeds.window()
            return live
          },
        })
      } finally {
        await Promise.all([primary.close(), shadowClient.close()])
      }
    } finally {
      await feeds.close()
    }

    const unclean = result.endpoints
      .filter((e) => !e.clean)
      .map((e) => ({ endpoint: e.name, examples: e.examples.slice(0, 5) }))
    expect(unclean).toEqual([])
    expect(result.errors).toEqual([])
    expect(result.verdict).toBe('parity')
    const manifest = await projectManifest()
    expect(result.endpoints.map((e) => e.name).sort()).toEqual(
      [...manifest.endpoints.map((e) => e.name), 'ws-live'].sort(),
    )
    // Not parity of two empty trackers: every character is read, every instance compared.
    expect(result.characters).toBe(CHARACTERS.length)
    for (const e of result.endpoints) expect(e.instances, e.name).toBeGreaterThan(0)

    // /ws/live: every frame of every type paired field by field, telemetry typeless on both sides.
    const report = live as WsLiveReport
    expect(report.paired).toBe(all.length)
    expect(report.liveLag.behind).toEqual({ primary: 0, shadow: 0 })
    expect(report.typedTelemetry).toEqual({ primary: 0, shadow: 0 })
    const byType = new Map(report.types.map((t) => [t.type, t]))
    for (const type of new Set(all.map(typeOf))) {
      const n = all.filter((f) => typeOf(f) === type).length
      expect(byType.get(type), type).toMatchObject({ primary: n, shadow: n, paired: n, missing: 0, extra: 0 })
    }
    for (const side of ['primary', 'shadow'] as const) {
      expect(report.subscribe[side]).toMatchObject({ violations: [], missed: 0, extra: 0 })
    }
    expect(report.probes.map((p) => [p.name, p.agree])).toEqual([
      ['command_error', true],
      ['dungeon_map_not_found', true],
      ['dungeon_map', true],
    ])
    // The tee path lost nothing: every frame Python received was mirrored and received.
    expect(result.accounting).toMatchObject({
      teeIn: all.length,
      teeDropped: 0,
      mirrored: all.length,
      lostInTransit: 0,
    })
  }, 60_000)

  it('serves the memory-only and new reads as CONTRACT.md §4 describes', async () => {
    const quests = (await getJson(`${legacy.url}/quest-status`)).body.quest_data
    expect(quests).toEqual(
      [...CHARACTERS].sort().flatMap((who) => [
        {
          character_name: who,
          quest_name: 'Colosseum',
          countdown: 'Ready',
          last_updated: served(at(3, CHARACTERS.indexOf(who))),
        },
        {
          character_name: who,
          quest_name: 'Stipend',
          countdown: '00:59:00',
          last_updated: served(at(17, CHARACTERS.indexOf(who))),
        },
      ]),
    )
    const peers = (await getJson(`${legacy.url}/vital-sharing/peers`)).body.peers
    expect(peers.map((p: { character_name: string }) => p.character_name)).toEqual([...CHARACTERS].sort())
    const portals = (await getJson(`${legacy.url}/portals`)).body.portals
    expect(portals).toEqual(
      CHARACTERS.map((who, i) => ({
        portal_name: `Gate ${i}`,
        ns: 40.1 + i,
        ew: 7,
        z: 0,
        discovered_at: served(at(5, i)),
        discovered_by: who,
      })),
    )
    const heatmap = (await getJson(`${legacy.url}/spawns/heatmap?hours=24&limit=2`)).body
    expect(heatmap).toEqual({
      spawn_points: [
        { ew: 3.1, ns: 4, intensity: 2 },
        { ew: 4.1, ns: 4, intensity: 2 },
      ],
      hours_window: 24,
      total_points: 2,
    })
    const bad = await getJson(`${legacy.url}/spawns/heatmap?hours=0`)
    expect(bad.status).toBe(422)
    expect(bad.body.detail[0].loc).toEqual(['query', 'hours'])
    expect((await getJson(`${legacy.url}/server-health`)).body).toEqual(
      (await getJson(`${shadow.url}/server-health`)).body,
    )
  })

  it('the real CLI sweep of the operator reports PARITY (exit 0), /ws/live included', async () => {
    // Fresh telemetry first: /live only shows characters heard from in the last 30 s.
    const now = Date.now()
    const fresh = (who: string) => new Date(now + CHARACTERS.indexOf(who) * 37).toISOString()
    await feed(
      new Map(
        CHARACTERS.map((who, i) => [
          who,
          [telemetry(who, { session_id: `session-${i}`, timestamp: fresh(who), kills: 12 })],
        ]),
      ),
    )
    await pythonLiveAt(fresh)
    const run = await overlord([
      'sweep',
      '--primary',
      legacy.url,
      '--shadow',
      shadow.url,
      '--reports',
      reports,
      '--tee-metrics',
      teeMetricsUrl,
      '--ws-window',
      '1s',
      '--json',
    ])
    const json = run.stdout.split('\n').find((l) => l.startsWith('{'))
    const sweep = JSON.parse(json ?? '{}') as SweepResult
    expect(sweep.endpoints?.filter((e) => !e.clean).map((e) => e.name)).toEqual([])
    expect(run.code).toBe(0)
    expect(sweep.verdict).toBe('parity')
    expect(sweep.characters).toBe(CHARACTERS.length)
    expect(sweep.endpoints.some((e) => e.name === 'ws-live' && e.clean)).toBe(true)
    expect(run.stdout).toMatch(/: PARITY/)
  }, 60_000)
})

describe("the Python tracker's /ws/live (CONTRACT.md §3)", () => {
  const name = freshDatabaseName()
  const SECRET_KEY = 'legacy-parity-session-key'
  let legacy: LegacyTracker
  beforeAll(async () => {
    legacy = await startLegacyTracker({
      databaseUrl: withDatabase(TEST_SERVER_URL, name),
      secret: SECRET,
      secretKey: SECRET_KEY,
      liveQueueBytes: 256 * 1024,
    })
  }, 30_000)
  afterAll(async () => {
    await legacy?.stop()
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })

  it('refuses a proxied browser without a session (1008); with one, subscribe and commands work', async () => {
    const wsUrl = legacy.url.replace('http', 'ws')
    const refused = await connectBrowser(wsUrl, PROXIED)
    expect(await closeCode(refused.ws)).toBe(1008)
    const cookie = `session=${new TimedSerializer({ secretKey: SECRET_KEY }).dumps({ username: 'ann' }, Date.now() / 1000)}`
    const browser = await connectBrowser(wsUrl, { ...PROXIED, cookie })
    const ws = await plugin(legacy.port)
    const atPlugin: string[] = []
    ws.on('message', (d) => atPlugin.push(String(d)))
    // The first frame registers the socket as Radar's plugin connection (CONTRACT.md §2).
    ws.send(JSON.stringify({ type: 'chat', character_name: 'Radar', text: 'before subscribe' }))
    await browser.waitFor((m) => m.type === 'chat')

    browser.ws.send(JSON.stringify({ type: 'subscribe', message_types: ['rare'] }))
    const command = JSON.stringify({ player_name: 'Radar', command: '/radar start' })
    browser.ws.send(command)
    browser.ws.send(JSON.stringify({ player_name: 'Nobody', command: '/radar start' }))
    expect(await browser.waitFor((m) => m.type === 'command_error')).toEqual({
      type: 'command_error',
      player_name: 'Nobody',
      error: 'not_connected',
    })
    await waitFor('the command at the plugin, as sent', () => atPlugin.includes(command))

    // Subscribed to rares: the chat sent before the rare never arrives, the rare does.
    ws.send(JSON.stringify({ type: 'chat', character_name: 'Radar', text: 'after subscribe' }))
    ws.send(
      JSON.stringify({ type: 'rare', character_name: 'Radar', name: 'Pyreal Sword', ew: 1, ns: 2, z: 0 }),
    )
    await browser.waitFor((m) => m.type === 'rare')
    expect(browser.messages.map((m) => m.type)).toEqual(['chat', 'command_error', 'rare'])
    ws.close()
    browser.ws.close()
  })

  it('is cut off with 1013 while ingest and the other browsers carry on (CONTRACT.md §3)', async () => {
    const wsUrl = legacy.url.replace('http', 'ws')
    const slow = await connectBrowser(wsUrl)
    const fast = await connectBrowser(wsUrl)
    await waitFor('both browsers registered', async () => (await legacy.metrics()).browsers === 2)
    slow.ws.pause()
    const ws = await plugin(legacy.port)
    // Incompressible: the browser negotiates permessage-deflate with uvicorn.
    const pad = () => randomBytes(12 * 1024).toString('base64')
    // Rounds until the stalled browser's kernel buffers are full and its queue passes the bound.
    const handled = (await legacy.metrics()).frames_handled
    let sent = 0
    for (let round = 0; round < 100 && (await legacy.metrics()).browser_slow_disconnects === 0; round++) {
      for (let i = 0; i < 100; i++) {
        ws.send(JSON.stringify({ type: 'chat', character_name: 'Chatty', seq: sent++, text: pad() }))
      }
      // Ingest never waits for the stalled browser: every frame is handled.
      await waitFor(
        'every frame handled',
        async () => (await legacy.metrics()).frames_handled === handled + sent,
      )
    }
    const m = await legacy.metrics()
    expect(m.browser_slow_disconnects).toBe(1)
    expect(m.browsers).toBe(1)
    // The other browser got every frame, the last ones sent after the cut-off too.
    await waitFor('the fast browser to get every frame', () => fast.messages.length === sent, 30_000)
    expect(fast.messages.map((x) => x.seq)).toEqual([...Array(sent).keys()])
    slow.ws.resume()
    expect(await closeCode(slow.ws)).toBe(1013)
    expect(slow.messages.length).toBeLessThan(sent)
    ws.close()
    fast.ws.close()
  }, 60_000)
})
