import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONTRACT_EVENT_TYPES } from '../src/protocol/frames.ts'
import {
  connectBrowser,
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

// Property-based fuzzing of the real ingest path and the real HTTP routes (issue 7): generated
// hostile frames from one plugin, interleaved with valid telemetry from two others, a browser
// attached throughout. Seeded with a fixed budget so CI runs the same cases every time.
const SEED = 20261204
const FRAME_RUNS = 60
const QUERY_RUNS = 150

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker()
})
afterAll(() => t.close())

const CONTRACT_TYPES = [...CONTRACT_EVENT_TYPES, 'inventory', 'share_vitals']
const PROTOTYPE_KEYS = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']
const FIELDS = [
  'character_name',
  'timestamp',
  'session_id',
  'kills',
  'kills_per_hour',
  'deaths',
  'ew',
  'ns',
  'z',
  'vt_state',
  'char_tag',
  'quest_name',
  'countdown',
  'vitae',
  'level',
  'total_xp',
  'stats',
  'landblock',
  'portal_name',
  'mob',
  'name',
  ...PROTOTYPE_KEYS,
]

/** A JSON value as text, possibly deeper than anything should nest. */
const deepText = fc.integer({ min: 1, max: 20_000 }).map((d) => `${'{"a":['.repeat(d)}0${']}'.repeat(d)}`)

/** Field values a plugin should never send, as JSON text. */
const hostileValue: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.double().map((n) => (Number.isFinite(n) ? String(n) : '1e999')),
  fc.constantFrom('1e308', '-1e308', '1e999', '9007199254740993', '2147483648', '-0', '"NaN"', '"Infinity"'),
  fc.constantFrom(
    '"2026-13-45T99:99:99Z"',
    '"0000-00-00T00:00:00Z"',
    '"9999-12-31T23:59:59.999999Z"',
    '"2026-02-30T00:00:00Z"',
    '"yesterday"',
    '""',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(`${s}\u0000${s}`)),
  fc.constantFrom(
    '"\\ud800"',
    '"a\\u0000b"',
    '{"__proto__":{"x":1}}',
    '{"toString":1}',
    '[{"constructor":1}]',
  ),
  fc.integer({ min: 10_000, max: 300_000 }).map((n) => JSON.stringify('x'.repeat(n))),
  deepText,
)

/** One hostile frame as the text a socket would carry. */
const hostileFrame: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        type: fc.oneof(
          fc.constantFrom(...CONTRACT_TYPES, ...PROTOTYPE_KEYS).map((s) => JSON.stringify(s)),
          hostileValue,
        ),
        fields: fc.array(fc.tuple(fc.constantFrom(...FIELDS), hostileValue), { maxLength: 6 }),
        named: fc.boolean(),
      })
      .map(({ type, fields, named }) => {
        const parts = [`"type":${type}`]
        if (named) parts.push('"character_name":"Fuzz Hostile"')
        for (const [k, v] of fields) parts.push(`${JSON.stringify(k)}:${v}`)
        return `{${parts.join(',')}}`
      }),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...CONTRACT_TYPES), fc.integer({ min: 1, max: 60 }))
      .map(([type, cut]) => JSON.stringify(telemetry('Fuzz Cut', { type })).slice(0, cut)),
  },
)

/** Valid telemetry from two other plugins, whose rows and kills must all arrive. */
const sent = { rows: new Map<string, number>(), kills: new Map<string, number>() }
function validFrame(character: string): unknown {
  const rows = sent.rows.get(character) ?? 0
  sent.rows.set(character, rows + 1)
  // Kills rise by 2 per frame in one session; the first frame of a session adds nothing.
  if (rows > 0) sent.kills.set(character, (sent.kills.get(character) ?? 0) + 2)
  return telemetry(character, { kills: rows * 2, session_id: 'fuzz' })
}

describe('fuzzed plugin frames', () => {
  it('never stop the tracker, never cost valid rows or kills, and are all accounted for', async () => {
    const browser = await connectBrowser(t.wsUrl)
    const hostile = await connectPlugin(t.wsUrl)
    const valid = [await connectPlugin(t.wsUrl), await connectPlugin(t.wsUrl)]
    await fc.assert(
      fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 12 }), async (frames) => {
        for (const frame of frames) {
          await sendFrames(t.url, hostile, [frame])
          await sendFrames(t.url, valid[0]!, [validFrame('Fuzz Valid A')])
          await sendFrames(t.url, valid[1]!, [validFrame('Fuzz Valid B')])
        }
        expect(hostile.readyState).toBe(hostile.OPEN)
        expect(browser.ws.readyState).toBe(browser.ws.OPEN)
      }),
      { seed: SEED, numRuns: FRAME_RUNS, endOnFailure: true },
    )
    await t.tracker.settle()

    for (const character of ['Fuzz Valid A', 'Fuzz Valid B']) {
      const rows = await t.tracker.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM telemetry_events WHERE character_name = $1',
        [character],
      )
      expect(rows.rows[0]!.n).toBe(sent.rows.get(character))
      const kills = await t.tracker.db.query<{ total_kills: number }>(
        'SELECT total_kills FROM char_stats WHERE character_name = $1',
        [character],
      )
      expect(kills.rows[0]!.total_kills).toBe(sent.kills.get(character))
    }
    const m = (await getJson(`${t.url}/metrics.json`)).body
    // Every frame is accepted or refused with a reason; nothing accepted is refused by the database.
    expect(m.frames_received).toBe(m.frames_accepted + m.frames_bad)
    const reasons = Object.values(m.bad_by_reason as Record<string, number>).reduce((a, b) => a + b, 0)
    expect(reasons).toBe(m.frames_bad)
    expect(m.persist_rejected).toBe(0)
    expect(m.persist_dropped).toBe(0)
    expect(m.handler_errors).toEqual({})
    for (const ws of [hostile, ...valid, browser.ws]) ws.close()
  })
})

/** Query and path values as a hostile client would send them, percent-encoded. */
const queryValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.double().map(String),
  fc.bigInt().map(String),
  fc.constantFrom('1e12', '1e300', '1e308', '-1', '1.5', 'NaN', 'Infinity', '-0', '0x10', '', '%00'),
  fc.constantFrom('2026-13-45T99:99:99Z', '2026-11-22T08:10:02Z', '0001-01-01T00:00:00Z', 'now'),
  fc.string({ maxLength: 10 }).map((s) => `${s}\u0000`),
  fc.integer({ min: 300, max: 20_000 }).map((n) => 'x'.repeat(n)),
)

const ROUTES: ((v: string, w: string) => string)[] = [
  (v) => `/trails?seconds=${v}`,
  (v, w) => `/history?from=${v}&to=${w}`,
  (v) => `/history?character=${v}`,
  (v, w) => `/spawns/heatmap?hours=${v}&limit=${w}`,
  (v) => `/stats/${v}`,
  (v) => `/character-stats/${v}`,
  (v) => `/combat-stats/${v}`,
  (v) => `/live?x=${v}`,
  () => '/quest-status',
  () => '/portals',
  () => '/vital-sharing/peers',
  () => '/total-rares',
]

describe('fuzzed query and path values', () => {
  it('every route answers below 500, and errors come in FastAPI shape', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(ROUTES.length - 1), queryValue, queryValue, async (route, v, w) => {
        const path = ROUTES[route]!(encodeURIComponent(v), encodeURIComponent(w))
        const res = await fetch(`${t.url}${path}`)
        const body = (await res.json()) as Record<string, unknown>
        expect(res.status, path).toBeLessThan(500)
        if (res.status >= 400) expect(body, path).toHaveProperty('detail')
      }),
      { seed: SEED, numRuns: QUERY_RUNS, endOnFailure: true },
    )
    expect((await getJson(`${t.url}/health`)).status).toBe(200)
  })
})
