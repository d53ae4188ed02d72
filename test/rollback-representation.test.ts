import { once } from 'node:events'
import { isLosslessNumber, parse } from 'lossless-json'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { withDatabase } from '../src/db/pool.ts'
import { TimedSerializer } from '../src/protocol/itsdangerous.ts'
import { buildTracker, type Tracker } from '../src/tracker/build-tracker.ts'
import { PROXIED } from './support/auth.ts'
import { adminQuery, freshDatabaseName, TEST_SERVER_URL } from './support/db.ts'
import { type LegacyTracker, startLegacyTracker } from './support/legacy-tracker.ts'
import { SECRET, sendFrames } from './support/tracker.ts'

// Issue 10 §2, storage half: rows the TypeScript tracker wrote while primary must read back through
// the Python tracker exactly as rows the Python tracker wrote itself. Database A: the legacy Python
// tracker ingests F. Database B: Python creates the schema, the TypeScript tracker ingests the same
// F. The stored rows must agree as text, and after a rollback Python must serve B as it serves A.

const ALVA = 'Älva Sköldmö'
const ZOE = 'Zoë ☃ 雪'
const QUOTE = 'O\'Brien "Q" \\ tab\tend'

/** A wall-clock instant `secondsAgo` before the run, written in a chosen ISO 8601 form. */
function at(secondsAgo: number, fraction: string, zone: 'Z' | '+02:00' | '-05:30' | ''): string {
  const base = Math.floor(Date.now() / 1000) * 1000 - secondsAgo * 1000
  const shift = zone === '+02:00' ? 120 : zone === '-05:30' ? -330 : 0
  const wall = new Date(base + shift * 60_000).toISOString().slice(0, 19)
  return `${wall}${fraction === '' ? '' : `.${fraction}`}${zone}`
}

const j = (s: string) => JSON.stringify(s)

/**
 * F: every persisted type and the representation traps (CONTRACT.md §1, §2, §6): int vs float
 * lexemes, floats whose Python repr is exponential, integers past 2^53, the §1 string numbers,
 * offset/naive/long-fraction timestamps, non-ASCII and escaped text, repeated and cross-session
 * combat snapshots mixing int and float leaves, duplicate portals, rares across sessions, bad frames.
 * Raw text, so the lexemes are the ones a plugin sends.
 */
function frameSequence(): string[] {
  const tel = (name: string, session: string, timestamp: string, rest: string) =>
    `{"type": "telemetry", "character_name": ${j(name)}, "char_tag": "tag", "session_id": ${j(session)}, "timestamp": ${j(timestamp)}, ${rest}}`
  return [
    tel(
      ALVA,
      's1',
      at(300, '123456', '+02:00'),
      '"ew": 105, "ns": 105.0, "z": 0.5, "kills": 10, "kills_per_hour": "340.5", "onlinetime": "01:02:03", "deaths": "57", "total_deaths": "", "rares_found": 0, "prismatic_taper_count": "garbage", "vt_state": "Combat", "mem_mb": 1e16, "cpu_pct": 1e-05, "mem_handles": 57, "latency_ms": 2.5e-7',
    ),
    tel(
      ALVA,
      's1',
      at(290, '', 'Z'),
      '"ew": 105.25, "ns": -0.0, "z": 1E2, "kills": 15, "kills_per_hour": "57", "deaths": " 12 ", "total_deaths": "1e3", "prismatic_taper_count": "340.5", "vt_state": "Idle"',
    ),
    tel(
      ALVA,
      's1',
      at(289, '', 'Z'),
      '"ew": 1, "ns": 2, "z": 3, "kills": 15, "kills_per_hour": "0x10", "deaths": "1_000", "total_deaths": "-0.5"',
    ),
    `{"type": "rare", "character_name": ${j(ALVA)}, "name": "Pyreal Sword ⚔", "timestamp": ${j(at(285, '5', '-05:30'))}, "ew": 105.0, "ns": 0.5, "z": 0}`,
    `{"type": "combat_stats", "character_name": ${j(ALVA)}, "session_id": "s1", "timestamp": ${j(at(284, '', 'Z'))}, "stats": {"damage": {"fire": 10, "cold": 0.5, "total": 105}, "monsters": {"Drudge": {"kills": 3, "dmg": 105.0}}, "crit": 1e-05, "big": 9007199254740993, "label": "ok"}}`,
    `{"type": "combat_stats", "character_name": ${j(ALVA)}, "session_id": "s1", "stats": {"damage": {"fire": 25, "cold": 0.75, "total": 105.0}, "monsters": {"Drudge": {"kills": 5, "dmg": 205.5}}, "crit": 2.5e-7, "big": 9007199254740995, "new": 1}}`,
    tel(
      ALVA,
      's2',
      at(280, '1234567', 'Z'),
      '"ew": 10.5, "ns": 20.25, "z": 0, "kills": 3, "kills_per_hour": "", "deaths": "0"',
    ),
    tel(ALVA, 's2', at(270, '000001', ''), '"ew": 10.5, "ns": 20.25, "z": 0, "kills": 5'),
    `{"type": "rare", "character_name": ${j(ALVA)}, "name": "Gold Gem", "timestamp": ${j(at(265, '', 'Z'))}, "ew": -1, "ns": -2.5, "z": 1e-05}`,
    `{"type": "combat_stats", "character_name": ${j(ALVA)}, "session_id": "s1", "stats": {"damage": {"fire": 25, "cold": 0.75, "total": 105.0}, "monsters": {"Drudge": {"kills": 5}}, "crit": 2.5e-7, "big": 9007199254740995, "new": 1}}`,
    `{"type": "combat_stats", "character_name": ${j(ALVA)}, "session_id": "s2", "stats": {"damage": {"fire": 7.5, "cold": 1, "total": 1e16}, "monsters": {"Drudge": {"kills": 1}, "Mosswart ☠": {"kills": 12345678901234567890}}, "crit": 0.0, "big": 1}}`,
    tel(
      ZOE,
      'z9',
      at(250, '250000', ''),
      '"ew": -33.25, "ns": 12.5, "z": 0.1, "kills": 0, "kills_per_hour": "12.0"',
    ),
    tel(ZOE, 'z9', at(240, '', 'Z'), '"ew": -33.25, "ns": 12.5, "z": 0.1, "kills": 12345678901234567890'),
    tel(ZOE, 'z9', at(230, '', 'Z'), '"ew": -33.5, "ns": 12.75, "z": 0.2, "kills": 4'),
    `{"type": "combat_stats", "character_name": ${j(ZOE)}, "stats": {"hits": 1, "avg": 0.1}}`,
    `{"type": "combat_stats", "character_name": ${j(ZOE)}, "stats": {"hits": 3, "avg": 0.2}}`,
    `{"type": "combat_stats", "character_name": ${j(QUOTE)}, "stats": {"hits": 1}}`,
    `{"type": "rare", "character_name": ${j(QUOTE)}, "name": "No Session", "timestamp": ${j(at(220, '', 'Z'))}, "ew": 1, "ns": 1, "z": 1}`,
    `{"type": "portal", "character_name": ${j(ALVA)}, "portal_name": "Portal to Höldhaven", "timestamp": ${j(at(210, '654321', '+02:00'))}, "ns": 12.34, "ew": -56.78, "z": 0.5}`,
    `{"type": "portal", "character_name": ${j(ZOE)}, "portal_name": "Same Place Later", "timestamp": ${j(at(200, '', 'Z'))}, "ns": 12.341, "ew": -56.779, "z": 9}`,
    `{"type": "portal", "character_name": ${j(ZOE)}, "portal_name": "Next Door", "timestamp": ${j(at(199, '', ''))}, "ns": 12.36, "ew": -56.78}`,
    `{"type": "portal", "character_name": ${j(ZOE)}, "portal_name": "Half Way", "timestamp": ${j(at(198, '', 'Z'))}, "ns": 0.25, "ew": 0.35, "z": 0}`,
    `{"type": "portal", "character_name": ${j(ZOE)}, "timestamp": ${j(at(197, '', 'Z'))}, "ns": 40.0, "ew": 40.0}`,
    `{"type": "spawn", "character_name": ${j(ALVA)}, "mob": "Drudge Skulker", "timestamp": ${j(at(190, '', 'Z'))}, "ew": 105.0, "ns": 1e-05, "z": 2.5e-7}`,
    `{"type": "spawn", "character_name": ${j(ZOE)}, "mob": "Mosswart ☠ \\"Elder\\"", "timestamp": ${j(at(189, '999999', '-05:30'))}, "ew": 1, "ns": 2}`,
    `{"type": "character_stats", "character_name": ${j(ALVA)}, "timestamp": ${j(at(180, '', 'Z'))}, "level": 276, "total_xp": 12345678901234569, "luminance_earned": 1500.0, "attributes": {"strength": {"base": 101.0}}, "skills": [], "titles": ["Älva the Bold"]}`,
    `{"type": "character_stats", "character_name": ${j(ALVA)}, "timestamp": ${j(at(170, '123456', '+02:00'))}, "level": 275, "total_xp": 12345678901234567, "unassigned_xp": 0, "luminance_earned": 1.5e3, "luminance_total": 1500000000000, "deaths": 3, "attributes": {"strength": {"base": 100, "creation": 100.0}, "coordination": {"base": 10, "ratio": 0.1}}, "vitals": {"health": {"current": 400, "max": 400.0}}, "skills": [{"name": "Sword", "level": 105.0, "bonus": 1e-05}, {"name": "Bow", "level": 1e16}], "allegiance": {"name": ${j(ZOE)}, "rank": 5, "monarch": null, "flags": [true, false]}, "properties": {"218103808": 12345678901234567890, "10": 2.5e-7, "2": 1e16, "neg": -12345678901234567890, "neg_zero": -0.0, "zero": 0.0, "tiny": 5e-324}, "titles": [${j(ALVA)}, ${j(QUOTE)}, "emoji 😀", "line\\u2028sep", "ctl\\u0001"]}`,
    `{"type": "character_stats", "character_name": ${j(ZOE)}, "timestamp": ${j(at(160, '', ''))}, "level": 1, "total_xp": 0.0, "properties": {}}`,
    `{"type": "chat", "character_name": ${j(ZOE)}, "text": "hello ☃"}`,
    `{"type": "vitals", "character_name": ${j(ZOE)}, "vitae": 0}`,
    'not json',
    '[1, 2]',
    `{"character_name": ${j(ZOE)}}`,
  ]
}

/**
 * Every persisted table. Rows are compared as sets: the TypeScript writer commits telemetry in
 * concurrent batches, so its ids need not follow arrival order (ids are not compared anyway).
 */
const TABLES = [
  'telemetry_events',
  'spawn_events',
  'rare_events',
  'portals',
  'char_stats',
  'rare_stats',
  'rare_stats_sessions',
  'combat_stats',
  'combat_stats_sessions',
  'character_stats',
]

/** Server times and ids: the only columns allowed to differ. */
const IGNORED = new Set(['id', 'received_at', 'updated_at'])

/** Each table's rows as stored, every column as PostgreSQL's text form (timestamps in UTC, full precision). */
async function storedRows(url: string): Promise<Record<string, (string | null)[][]>> {
  const client = new pg.Client({ connectionString: url, options: '-c TimeZone=UTC' })
  await client.connect()
  try {
    const out: Record<string, (string | null)[][]> = {}
    for (const table of TABLES) {
      const { rows: cols } = await client.query<{ column_name: string }>(
        'SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
        [table],
      )
      const kept = cols.map((c) => c.column_name).filter((c) => !IGNORED.has(c))
      const { rows } = await client.query({
        text: `SELECT ${kept.map((c) => `${pg.escapeIdentifier(c)}::text`).join(', ')} FROM ${table} ORDER BY ${kept.map((_, i) => i + 1).join(', ')}`,
        rowMode: 'array',
      })
      out[table] = [kept, ...(rows as (string | null)[][])]
    }
    return out
  } finally {
    await client.end()
  }
}

/** The read routes compared after the rollback (issue 10 §2). */
const enc = encodeURIComponent
const READS = [
  '/trails?seconds=3600',
  '/history',
  `/history?character=${enc(ALVA)}&from=${enc(at(285, '', 'Z'))}`,
  ...[ALVA, ZOE, QUOTE, 'Nobody'].flatMap((n) => [
    `/stats/${enc(n)}`,
    `/combat-stats/${enc(n)}`,
    `/character-stats/${enc(n)}`,
  ]),
  '/character-stats/list',
  '/total-kills',
  '/total-rares',
]

async function read(base: string, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(base + path)
  return { status: res.status, text: await res.text() }
}

type Canonical = null | boolean | string | { n: string } | Canonical[] | { [k: string]: Canonical }

/** A parsed body with numbers compared by exact value (`105.0` equals `105`; no 2^53 rounding). */
function byValue(text: string): Canonical {
  const walk = (v: unknown): Canonical => {
    if (isLosslessNumber(v)) {
      const s = v.toString()
      if (!/[.eE]/.test(s)) return { n: BigInt(s).toString() }
      const x = Number(s)
      return { n: Number.isInteger(x) ? BigInt(x).toString() : String(x) }
    }
    if (Array.isArray(v)) return v.map(walk)
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    return v as Canonical
  }
  return walk(parse(text))
}

/** Paths whose number is written as an int in one body and as a float in the other. */
function classDifferences(a: string, b: string): string[] {
  const out: string[] = []
  const walk = (x: unknown, y: unknown, path: string) => {
    if (isLosslessNumber(x) && isLosslessNumber(y)) {
      if (/[.eE]/.test(x.toString()) !== /[.eE]/.test(y.toString())) out.push(`${path}: ${x} vs ${y}`)
    } else if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) {
      for (const k of Object.keys(x)) walk((x as never)[k], (y as never)[k], `${path}/${k}`)
    }
  }
  walk(parse(a), parse(b), '')
  return out
}

async function plugin(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/position`, { headers: { 'X-Plugin-Secret': SECRET } })
  await once(ws, 'open')
  return ws
}

/** Sends F on one plugin socket and waits until the legacy tracker has handled every frame. */
async function feedLegacy(legacy: LegacyTracker, frames: readonly string[]): Promise<void> {
  const ws = await plugin(legacy.port)
  for (const f of frames) ws.send(f)
  for (;;) {
    if ((await legacy.metrics()).frames_handled >= frames.length) break
    await new Promise((r) => setTimeout(r, 20))
  }
  ws.close()
}

describe('rollback: the stored representation agrees', () => {
  const nameA = freshDatabaseName()
  const nameB = freshDatabaseName()
  const urlA = withDatabase(TEST_SERVER_URL, nameA)
  const urlB = withDatabase(TEST_SERVER_URL, nameB)
  const frames = frameSequence()
  let pythonA: LegacyTracker
  let pythonB: LegacyTracker | undefined
  let shadow: Tracker
  let shadowUrl: string

  beforeAll(async () => {
    pythonA = await startLegacyTracker({ databaseUrl: urlA, secret: SECRET })
    await feedLegacy(pythonA, frames)

    // B gets the legacy's own schema; the TypeScript tracker (as primary would) writes into it.
    await (await startLegacyTracker({ databaseUrl: urlB, secret: SECRET })).stop()
    shadow = await buildTracker({ databaseUrl: urlB, sharedSecret: SECRET, skipSchemaInit: true })
    shadowUrl = await shadow.listen(0)
    const ws = await plugin(Number(new URL(shadowUrl).port))
    await sendFrames(shadowUrl, ws, frames)
    await shadow.settle()
    ws.close()
  }, 60_000)

  afterAll(async () => {
    await pythonA?.stop()
    await pythonB?.stop()
    await shadow?.close()
    await adminQuery(`DROP DATABASE IF EXISTS ${nameA} WITH (FORCE)`)
    await adminQuery(`DROP DATABASE IF EXISTS ${nameB} WITH (FORCE)`)
  })

  it('stores every persisted row as the legacy does, column by column as text', async () => {
    const [a, b] = await Promise.all([storedRows(urlA), storedRows(urlB)])
    // F is not empty where it matters: each table got rows from it.
    for (const table of TABLES) expect(a[table]!.length, table).toBeGreaterThan(1)
    for (const table of TABLES) expect(b[table], table).toEqual(a[table])
  })

  it('after a rollback, Python serves what TypeScript wrote byte for byte as what it wrote itself', async () => {
    pythonB = await startLegacyTracker({ databaseUrl: urlB, secret: SECRET, skipSchemaInit: true })
    for (const path of READS) {
      const [fromA, fromB] = await Promise.all([read(pythonA.url, path), read(pythonB.url, path)])
      expect(fromB, path).toEqual(fromA)
    }
  })

  it("the TypeScript tracker serves B with the legacy's values; JSONB payloads with its number lexemes too", async () => {
    pythonB ??= await startLegacyTracker({ databaseUrl: urlB, secret: SECRET, skipSchemaInit: true })
    for (const path of READS) {
      const [legacy, ts] = await Promise.all([read(pythonB.url, path), read(shadowUrl, path)])
      expect(ts.status, path).toBe(legacy.status)
      if (legacy.status !== 200) continue
      expect(byValue(ts.text), path).toEqual(byValue(legacy.text))
      if (path.startsWith('/combat-stats/') || path.startsWith('/character-stats/'))
        expect(classDifferences(legacy.text, ts.text), path).toEqual([])
    }
  })
})

describe('the legacy tracker stand-in', () => {
  const name = freshDatabaseName()
  let legacy: LegacyTracker
  beforeAll(async () => {
    legacy = await startLegacyTracker({
      databaseUrl: withDatabase(TEST_SERVER_URL, name),
      secret: SECRET,
      secretKey: 'legacy-key',
      buildVersion: '2026.12.4.0000-abc1234',
    })
  })
  afterAll(async () => {
    await legacy?.stop()
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })

  it('closes a plugin with the wrong secret with 1008 (CONTRACT.md §2)', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${legacy.port}/ws/position`, {
      headers: { 'X-Plugin-Secret': 'no' },
    })
    const [code] = await once(ws, 'close')
    expect(code).toBe(1008)
  })

  it('serves reads to internal trust or a session cookie only (CONTRACT.md §5)', async () => {
    const cookie = `session=${new TimedSerializer({ secretKey: 'legacy-key' }).dumps({ username: 'ann' }, Date.now() / 1000)}`
    const status = async (headers: Record<string, string>) =>
      (await fetch(`${legacy.url}/total-kills`, { headers })).status
    expect(await status({})).toBe(200)
    expect(await status(PROXIED)).toBe(401)
    expect(await status({ ...PROXIED, cookie })).toBe(200)
    expect(await (await fetch(`${legacy.url}/api-version`, { headers: PROXIED })).json()).toEqual({
      version: '2026.12.4.0000-abc1234',
    })
  })
})
