import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import {
  compareLiveFeeds,
  isProbePlayer,
  LiveComparator,
  type LiveFeeds,
  type LiveFeedsOptions,
  openLiveFeeds,
  type Received,
  type WindowSnapshot,
  type WsLiveReport,
} from '../src/compare/ws-live.ts'
import {
  connectBrowser,
  connectPlugin,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'
import { startWsLiveRelay, type WsLiveRelay } from './support/ws-live-relay.ts'
import { freePort, waitFor } from './support/ws-sink.ts'

const silent = pino({ level: 'silent' })
const SUBSCRIBED = ['rare', 'chat', 'telemetry']
const T0 = Date.now() - 60_000
const at = (s: number) => new Date(T0 + s * 1000).toISOString()

/** One character's traffic: every kind the dashboard sees, one chat without a timestamp (content identity). */
function world(who: string): Record<string, unknown>[] {
  return [
    telemetry(who, { timestamp: at(0), kills: 1 }),
    { type: 'vitals', character_name: who, timestamp: at(1), health_current: 90, health_max: 100, vitae: 0 },
    { type: 'rare', character_name: who, timestamp: at(2), name: 'Pyreal Sword', ew: 1.5, ns: -2, z: 0 },
    { type: 'chat', character_name: who, timestamp: at(3), text: 'hello', color: 5 },
    { type: 'chat', character_name: who, text: 'no timestamp here', channel: 'General' },
    { type: 'portal', character_name: who, timestamp: at(4), portal_name: 'Gate', ns: 10.1, ew: 20.2, z: 0 },
    {
      type: 'dungeon_map',
      character_name: who,
      timestamp: at(5),
      landblock: `0x${Buffer.from(who).toString('hex').slice(0, 4).toUpperCase()}0000`,
      tiles: [{ x: 1, y: 2, id: 300 }],
    },
    { type: 'quest', character_name: who, timestamp: at(6), quest_name: 'Stipend', countdown: '01:00:00' },
    { type: 'spawn', character_name: who, timestamp: at(7), mob: 'Drudge', ew: 3, ns: 4, z: 0 },
    telemetry(who, { timestamp: at(8), kills: 3 }),
    { type: 'rare', character_name: who, timestamp: at(9), name: 'Gem of Power', ew: 1.5, ns: -2, z: 0 },
  ]
}

const typeOf = (f: Record<string, unknown>) => f.type as string
const subscribedCount = (frames: readonly Record<string, unknown>[]) =>
  frames.filter((f) => SUBSCRIBED.includes(typeOf(f))).length

let primary: RunningTracker
let shadow: RunningTracker
let pws: WebSocket
let sws: WebSocket
/** Whatever a tracker sends to a plugin socket: a probe command must never arrive. */
const toPlugins: string[] = []

beforeAll(async () => {
  primary = await startTracker()
  shadow = await startTracker()
  pws = await connectPlugin(primary.wsUrl)
  sws = await connectPlugin(shadow.wsUrl)
  for (const ws of [pws, sws]) ws.on('message', (d) => toPlugins.push(String(d)))
})
afterAll(async () => {
  pws.close()
  sws.close()
  await Promise.all([primary.close(), shadow.close()])
})

/** The same frames to both trackers, through their plugin sockets. */
async function feed(frames: readonly unknown[]): Promise<void> {
  await Promise.all([sendFrames(primary.url, pws, frames), sendFrames(shadow.url, sws, frames)])
}

function open(options: Partial<LiveFeedsOptions> = {}): Promise<LiveFeeds> {
  return openLiveFeeds({
    primary: { url: primary.url },
    shadow: { url: shadow.url },
    logger: silent,
    subscribeTypes: SUBSCRIBED,
    ...options,
  })
}

/** Waits until each side's firehose and subscribed socket hold at least this many messages. */
function delivered(
  feeds: LiveFeeds,
  want: { firehose: number; subscribed: number },
  sides: readonly ('primary' | 'shadow')[] = ['primary', 'shadow'],
): Promise<void> {
  return waitFor('messages on the live feeds', () =>
    sides.every((side) => {
      const r = feeds.received()[side]
      return r.firehose >= want.firehose && r.subscribed >= want.subscribed
    }),
  )
}

/** Waits until the last message received is older than the lag margin: nothing is at the window's edge. */
function settled(feeds: LiveFeeds, marginMs: number): Promise<void> {
  return waitFor('the window edge to pass', () => {
    const r = feeds.received()
    return Date.now() - Math.max(r.primary.lastAt ?? 0, r.shadow.lastAt ?? 0) > marginMs
  })
}

/**
 * Waits until the sockets' start (they are all receiving at `liveAt`) lies further back than the
 * margin: the start is a window edge too, where a message only one side has is lag.
 */
const pastStart = (liveAt: number, marginMs: number) =>
  waitFor('the start edge to pass', () => Date.now() - liveAt > marginMs)

const mismatchKeys = (r: WsLiveReport) =>
  r.clusters.filter((c) => c.status === 'mismatch').map((c) => `${c.class} ${c.signature} ×${c.count}`)

describe('/ws/live of two trackers fed the same frames', () => {
  it('compares clean: every type paired field by field, subscribe filter and probes agreeing', async () => {
    const feeds = await open()
    try {
      const frames = world('Clean Larsson')
      await feed(frames)
      await delivered(feeds, { firehose: frames.length, subscribed: subscribedCount(frames) })
      const report = await feeds.window()

      expect(mismatchKeys(report)).toEqual([])
      expect(report.errorEntries).toEqual([])
      expect(report.clean).toBe(true)
      expect(report.name).toBe('ws-live')
      expect(report.paired).toBe(frames.length)
      expect(report.liveLag.samples).toBe(frames.length)
      expect(report.liveLag.behind).toEqual({ primary: 0, shadow: 0 })
      const counts = new Map(report.types.map((t) => [t.type, t]))
      for (const type of ['telemetry', 'vitals', 'rare', 'chat', 'portal', 'dungeon_map', 'quest', 'spawn']) {
        const n = frames.filter((f) => typeOf(f) === type).length
        expect(counts.get(type)).toEqual({
          type,
          primary: n,
          shadow: n,
          paired: n,
          missing: 0,
          extra: 0,
          lag: 0,
        })
      }
      expect(report.typedTelemetry).toEqual({ primary: 0, shadow: 0 })
      for (const side of ['primary', 'shadow'] as const) {
        expect(report.subscribe[side]).toMatchObject({
          received: subscribedCount(frames),
          violations: [],
          missed: 0,
          extra: 0,
        })
      }
      expect(report.probes.map((p) => [p.name, p.agree])).toEqual([
        ['command_error', true],
        ['dungeon_map_not_found', true],
        ['dungeon_map', true],
      ])
    } finally {
      await feeds.close()
    }
  })
})

describe('compareLiveFeeds', () => {
  it('compares one window on fresh sockets and closes them: quiet trackers are clean, probes agree', async () => {
    const report = await compareLiveFeeds({
      primary: { url: primary.url },
      shadow: { url: shadow.url },
      logger: silent,
      windowMs: 50,
    })
    expect(report.clean).toBe(true)
    expect(report.errorEntries).toEqual([])
    expect(report.probes.map((p) => p.agree)).toEqual([true, true])
    expect(report.probes.map((p) => p.asContract)).toEqual([
      { primary: true, shadow: true },
      { primary: true, shadow: true },
    ])
  })
})

describe('a shadow behind a relay that misbehaves', () => {
  const MARGIN = 250
  let relay: WsLiveRelay | undefined
  let feeds: LiveFeeds | undefined
  const through = async (
    options: Parameters<typeof startWsLiveRelay>[1],
    extra: Partial<LiveFeedsOptions> = {},
  ) => {
    relay = await startWsLiveRelay(shadow.url, options)
    feeds = await open({ shadow: { url: relay.url }, lagMarginMs: MARGIN, ...extra })
    await pastStart(Date.now(), MARGIN)
    return feeds
  }
  const done = async () => {
    await feeds?.close()
    await relay?.close()
    feeds = undefined
    relay = undefined
  }

  it('catches a dropped type: every rare missing on the shadow, reported as missing, never as a field', async () => {
    try {
      const f = await through({ down: (text) => (JSON.parse(text).type === 'rare' ? undefined : text) })
      const frames = world('Dropper')
      const rares = frames.filter((x) => typeOf(x) === 'rare').length
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) }, ['primary'])
      await delivered(f, { firehose: frames.length - rares, subscribed: subscribedCount(frames) - rares }, [
        'shadow',
      ])
      await settled(f, MARGIN)
      const report = await f.window()

      expect(report.clean).toBe(false)
      expect(mismatchKeys(report).sort()).toEqual([
        `missing_entity rare[] ×${rares}`,
        'missing_entity types[] ×1',
      ])
      expect(report.byClass.value).toBe(0)
      expect(report.types.find((t) => t.type === 'rare')).toMatchObject({
        primary: rares,
        shadow: 0,
        missing: rares,
        lag: 0,
      })
      const example = report.examples.find((d) => d.signature === 'rare[]')!
      expect(example.path).toBe(`rare[Dropper@${at(2)}]`)
      // The shadow's subscribed socket lacks them too, in step with its firehose: no subscribe finding.
      expect(report.subscribe.shadow).toMatchObject({ violations: [], missed: 0 })
    } finally {
      await done()
    }
  })

  it('catches typed telemetry: the shadow sends telemetry with its type key', async () => {
    try {
      const f = await through({
        down: (text) => {
          const m = JSON.parse(text)
          return m.type === undefined ? JSON.stringify({ type: 'telemetry', ...m }) : text
        },
      })
      const frames = world('Typed')
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) })
      const report = await f.window()

      expect(report.typedTelemetry).toEqual({ primary: 0, shadow: 2 })
      expect(mismatchKeys(report)).toEqual(['extra_field telemetry[].type ×2'])
      expect(report.examples[0]).toMatchObject({
        path: `telemetry[Typed@${at(0)}].type`,
        class: 'extra_field',
        shadow: 'telemetry',
        status: 'mismatch',
      })
    } finally {
      await done()
    }
  })

  it('catches a wrong subscribe filter: types not subscribed to reach the subscribed socket', async () => {
    try {
      // The relay swallows the subscribe, so the tracker sends that socket everything.
      const f = await through({ up: (text) => (JSON.parse(text).type === 'subscribe' ? undefined : text) })
      const frames = world('Filtered')
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) }, ['primary'])
      await delivered(f, { firehose: frames.length, subscribed: frames.length }, ['shadow'])
      const report = await f.window()

      const notSubscribed = ['dungeon_map', 'portal', 'quest', 'spawn', 'vitals']
      expect(report.subscribe.primary.violations).toEqual([])
      expect(report.subscribe.shadow.violations.map((v) => v.type).sort()).toEqual(notSubscribed)
      expect(mismatchKeys(report).sort()).toEqual(
        notSubscribed.map((t) => `extra_entity subscribe.${t}[] ×1`),
      )
      // The firehoses themselves agree.
      expect(report.types.every((t) => t.primary === t.shadow && t.paired === t.primary)).toBe(true)
    } finally {
      await done()
    }
  })

  it('catches a wrong field value on the same frame', async () => {
    try {
      const f = await through({
        down: (text) => {
          const m = JSON.parse(text)
          return m.type === undefined && m.kills === 3 ? JSON.stringify({ ...m, ew: 99 }) : text
        },
      })
      const frames = world('Shifted')
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) })
      const report = await f.window()

      expect(report.mismatches).toBe(1)
      expect(report.byClass.value).toBe(1)
      expect(report.examples[0]).toMatchObject({
        path: `telemetry[Shifted@${at(8)}].ew`,
        signature: 'telemetry[].ew',
        class: 'value',
        primary: 12.5,
        shadow: 99,
      })
      expect(report.paired).toBe(frames.length)
    } finally {
      await done()
    }
  })

  it('reports a shadow ~1 s behind at the window edge as lag, and compares clean', async () => {
    try {
      const f = await through({ delayMs: 1_000 }, { lagMarginMs: 2_000, probes: false })
      const frames = world('Laggard')
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) }, ['primary'])
      const first = await f.window()
      expect(first.clean).toBe(true)
      expect(first.mismatches).toBe(0)
      expect(first.liveLag.behind.shadow).toBeGreaterThan(0)
      expect(first.liveLag.behind.shadow + first.paired).toBe(frames.length)
      expect(first.liveLag.behindSeconds).toBeGreaterThanOrEqual(0)
      expect(first.explained).toBe(first.liveLag.behind.shadow)

      await waitFor('the shadow to catch up', async () => {
        const r = f.received().shadow
        return r.firehose >= frames.length - first.paired
      })
      const second = await f.window()
      expect(second.clean).toBe(true)
      expect(first.paired + second.paired).toBe(frames.length)
      expect(second.liveLag.behind).toEqual({ primary: 0, shadow: 0 })
      expect(second.liveLag.p50Seconds).toBeGreaterThanOrEqual(0.95)
      expect(second.liveLag.p50Seconds).toBeLessThan(2)
      expect(second.lag.p50Ms).toBeGreaterThanOrEqual(950)
    } finally {
      await done()
    }
  })

  it('probes agree on both sides; a shadow that swallows the command_error answer is caught', async () => {
    try {
      const f = await through(
        { down: (text) => (JSON.parse(text).type === 'command_error' ? undefined : text) },
        { probeTimeoutMs: 1_000 },
      )
      const frames = world('Prober')
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) })
      const report = await f.window()

      const byName = new Map(report.probes.map((p) => [p.name, p]))
      const command = byName.get('command_error')!
      expect(isProbePlayer(command.request.player_name as string)).toBe(true)
      expect(command.primary).toEqual({
        type: 'command_error',
        player_name: command.request.player_name,
        error: 'not_connected',
      })
      expect(command.shadow).toBeNull()
      expect(command.agree).toBe(false)
      expect(command.asContract).toEqual({ primary: true, shadow: false })
      expect(byName.get('dungeon_map_not_found')).toMatchObject({
        agree: true,
        asContract: { primary: true, shadow: true },
        shadow: { type: 'dungeon_map', landblock: '0xFFFFFFFF', error: 'not_found' },
      })
      const map = frames.find((x) => typeOf(x) === 'dungeon_map')!
      expect(byName.get('dungeon_map')).toMatchObject({ agree: true, primary: map, shadow: map })
      expect(mismatchKeys(report)).toEqual(['missing_entity probe.command_error ×1'])
      expect(report.clean).toBe(false)
      expect(toPlugins).toEqual([])
    } finally {
      await done()
    }
  })

  it('reconnects a socket that was cut off, and reports the gap', async () => {
    try {
      const f = await through({})
      const before = relay!.accepted
      relay!.dropClients()
      // The shadow's firehose and subscribed sockets come back on their own.
      await waitFor('the feeds to reconnect', () => relay!.accepted >= before + 2 && f.received().shadow.up)
      const frames = world('Reconnected')
      await feed(frames)
      await delivered(f, { firehose: frames.length, subscribed: subscribedCount(frames) })
      const report = await f.window()

      expect(report.feeds.shadow.firehose.reconnects).toBe(1)
      expect(report.feeds.shadow.subscribed.reconnects).toBe(1)
      expect(report.errorEntries.map((e) => [e.side, e.message.replace(/[\d.]+ s/, 'n s')])).toEqual([
        ['shadow', 'shadow /ws/live firehose: reconnected after a n s gap'],
        ['shadow', 'shadow /ws/live subscribed: reconnected after a n s gap'],
      ])
      expect(report.mismatches).toBe(0)
      expect(report.paired).toBe(frames.length)
    } finally {
      await done()
    }
  })
})

describe('a window over its message cap', () => {
  it('keeps the cap, counts the overflow, and is blind past it rather than calling messages missing', async () => {
    const MARGIN = 250
    const feeds = await open({ maxMessagesPerWindow: 3, lagMarginMs: MARGIN })
    const watchers = await Promise.all([connectBrowser(primary.wsUrl), connectBrowser(shadow.wsUrl)])
    try {
      await pastStart(Date.now(), MARGIN)
      const frames = world('Flood')
      await feed(frames)
      // Plain browsers opened alongside: once they have the last frame, the broadcast is over.
      await Promise.all(watchers.map((b) => b.waitFor((m) => m.character_name === 'Flood' && m.kills === 3)))
      await waitFor('the last rare', () =>
        watchers.every((b) => b.messages.filter((m) => m.type === 'rare').length === 2),
      )
      await settled(feeds, MARGIN)
      const report = await feeds.window()

      expect(report.mismatches).toBe(0)
      expect(report.errorEntries).toEqual([])
      expect(report.paired).toBe(3)
      for (const side of ['primary', 'shadow'] as const) {
        expect(report.feeds[side].firehose).toMatchObject({ kept: 3, overflow: frames.length - 3 })
        expect(report.feeds[side].subscribed).toMatchObject({
          kept: 3,
          overflow: subscribedCount(frames) - 3,
        })
      }
    } finally {
      for (const b of watchers) b.ws.close()
      await feeds.close()
    }
  })
})

describe('a side that is down', () => {
  it('is an error entry in the window, never a throw, and its missing messages are not mismatches', async () => {
    const feeds = await open({
      shadow: { url: `http://127.0.0.1:${await freePort()}` },
      connectTimeoutMs: 300,
      probeTimeoutMs: 300,
      lagMarginMs: 100,
    })
    try {
      const frames = world('Alone')
      await feed(frames)
      await delivered(feeds, { firehose: frames.length, subscribed: subscribedCount(frames) }, ['primary'])
      await settled(feeds, 100)
      const report = await feeds.window()
      expect(report.clean).toBe(false)
      expect(report.mismatches).toBe(0)
      expect(report.liveLag.unseen.shadow).toBe(frames.length)
      expect(report.errorEntries.map((e) => [e.side, e.code])).toEqual([
        ['shadow', 'CMP_ERR_BACKEND'],
        ['shadow', 'CMP_ERR_BACKEND'],
        ['shadow', 'CMP_ERR_BACKEND'],
      ])
      expect(report.errorEntries.map((e) => e.message.split(':')[0])).toEqual([
        'shadow /ws/live firehose',
        'shadow /ws/live subscribed',
        'shadow /ws/live probe',
      ])
    } finally {
      await feeds.close()
    }
  })
})

describe('LiveComparator: the window edges (pure, on receive times)', () => {
  const MARGIN = 2_000
  const msg = (n: number, extra: Record<string, unknown> = {}) => ({
    type: 'rare',
    character_name: 'Edge',
    timestamp: `2026-01-01T00:00:${String(n).padStart(2, '0')}+00:00`,
    name: `Gem ${n}`,
    ...extra,
  })
  const rx = (at: number, m: Record<string, unknown>): Received => ({ at, msg: m })
  const side = (items: Received[], from = 0) => ({
    firehose: { items, blind: [{ from: Number.NEGATIVE_INFINITY, to: from, reason: 'start' as const }] },
    subscribed: {
      items: [],
      blind: [{ from: Number.NEGATIVE_INFINITY, to: from, reason: 'start' as const }],
    },
  })
  const snap = (cut: number, p: Received[], s: Received[], shadowBlind?: { from: number; to: number }) => {
    const w: WindowSnapshot = { startedAt: 0, cut, primary: side(p), shadow: side(s) }
    if (shadowBlind !== undefined) w.shadow.firehose.blind.push({ ...shadowBlind, reason: 'down' })
    return w
  }
  const comparator = () => new LiveComparator({ lagMarginMs: MARGIN, subscribeTypes: [] })
  const mismatches = (c: ReturnType<LiveComparator['compare']>) =>
    c.differences.filter((d) => d.status === 'mismatch').map((d) => `${d.class} ${d.path}`)

  it('carries a message one side has at the edge; missing only once the margin has passed', () => {
    const c = comparator()
    const one = c.compare(snap(20_000, [rx(19_000, msg(1))], []))
    expect(mismatches(one)).toEqual([])
    expect(one.liveLag.behind).toEqual({ shadow: 1, primary: 0 })
    expect(one.liveLag.behindSeconds).toBe(1)
    const two = c.compare(snap(30_000, [], []))
    expect(mismatches(two)).toEqual([
      `missing_entity rare[Edge@${msg(1).timestamp}]`,
      'missing_entity types[rare]',
    ])
  })

  it('pairs a copy that arrives in the next window, with its lag', () => {
    const c = comparator()
    c.compare(snap(20_000, [rx(19_500, msg(2))], []))
    const next = c.compare(snap(30_000, [], [rx(20_700, msg(2))]))
    expect(mismatches(next)).toEqual([])
    expect(next.paired).toBe(1)
    expect(next.liveLag.p50Seconds).toBe(1.2)
  })

  it('counts a message the other side could not see (a reconnect gap) as unseen, not missing', () => {
    const c = comparator()
    const w = c.compare(snap(20_000, [rx(10_000, msg(3))], [], { from: 9_000, to: 11_000 }))
    expect(mismatches(w)).toEqual([])
    expect(w.liveLag.unseen.shadow).toBe(1)
  })

  it('counts a copy later than the margin as late once it was reported missing, not as an extra', () => {
    const c = comparator()
    c.compare(snap(20_000, [rx(10_000, msg(4))], []))
    const later = c.compare(snap(30_000, [], [rx(25_000, msg(4))]))
    expect(mismatches(later)).toEqual([])
    expect(later.liveLag.late).toBe(1)
    expect(later.liveLag.maxSeconds).toBe(15)
  })

  it('pairs a frame whose content changed without a timestamp by type and character, field by field', () => {
    const c = comparator()
    const chat = (text: string) => ({ type: 'chat', character_name: 'Edge', text })
    const w = c.compare(snap(20_000, [rx(10_000, chat('hello'))], [rx(10_001, chat('hullo'))]))
    expect(w.differences.map((d) => [d.class, d.signature, d.primary, d.shadow])).toEqual([
      ['value', 'chat[].text', 'hello', 'hullo'],
    ])
  })

  it('compares numbers by value and names an instant spelled two ways a format difference', () => {
    const c = comparator()
    const w = c.compare(
      snap(
        20_000,
        [rx(10_000, msg(5, JSON.parse('{"ew":1.0,"seen":"2026-01-01T00:00:00Z"}')))],
        [rx(10_000, msg(5, JSON.parse('{"ew":1,"seen":"2026-01-01T00:00:00+00:00"}')))],
      ),
    )
    expect(w.differences.map((d) => `${d.class} ${d.signature}`)).toEqual(['format rare[].seen'])
  })
})
