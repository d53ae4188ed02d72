import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { MAX_JSON_DEPTH, textExceedsDepth } from '../protocol/json-bounds.ts'
import { summarize } from '../util/quantile.ts'
import { compareDocs } from './diff.ts'
import { normalize } from './normalize.ts'
import type { CompareRules } from './rules.ts'
import { parseRules } from './rules.ts'

/** Read-only connections to `dereth` (primary) and `dereth_ts` (shadow). */
export interface DbParityOptions {
  primaryUrl: string
  shadowUrl: string
  /** Relative tolerance of counts and totals (issue 4 §6: 0.1 %); jsonb documents are compared exactly. */
  tolerance?: number
  /** Closed time buckets are this wide; the bucket holding "now - closeAfterMs" is still open. */
  bucketSeconds?: number
  closeAfterMs?: number
  /** How long apart each side is read twice, for figures that move while the fleet plays (default 1 s). */
  settleMs?: number
  /** Called after each side's read (1: first, 2: second), awaited: a hook for tests to move a figure. */
  onRead?: (side: 'primary' | 'shadow', n: 1 | 2) => Promise<void>
  /** Only rows since this instant count (the shadow's start); default: the shadow's first row. */
  since?: string
  now?: () => number
}

/**
 * One compared figure, named by where it was read: `rare_events.count(*)@2026-11-22T08:00:00Z`,
 * `char_stats.total_kills[Larsson]`, `combat_stats.lifetime[Larsson] kills.total`.
 */
export interface ParityCheck {
  name: string
  table: string
  /** The column, or the aggregate over it: `count(*)`, `sum(total_kills)`, `lifetime`. */
  column: string
  /** The row: its character name, for per-character figures and jsonb documents. */
  key?: string
  /** The start of the closed time bucket (ISO 8601, UTC) of a bucketed count. */
  bucket?: string
  /** Where inside a jsonb document the two differ (`kills.total`); absent for the whole figure. */
  path?: string
  /** Both values: numbers for counts and totals, parsed JSON for documents; absent where there is no row. */
  primary?: unknown
  shadow?: unknown
  /** How they differ: the diff class and its detail (`value Δ=1`, `missing_field`, `no row in shadow`). */
  detail?: string
  relDiff: number
  ok: boolean
}

export interface DatabaseParity {
  since: string | null
  /** Failing checks first, then by relative difference and name. */
  checks: ParityCheck[]
  /** The worst relative difference over all checks. */
  worstRelDiff: number
  withinTolerance: boolean
  /** Tee lag: shadow `received_at` minus primary `received_at` for the same telemetry rows. */
  teeLagMs: { samples: number; p50: number | null; p95: number | null; max: number | null }
}

const EVENT_TABLES = ['telemetry_events', 'spawn_events', 'rare_events'] as const
const TOTALS = [
  ['char_stats', 'total_kills'],
  ['rare_stats', 'total_rares'],
] as const

/** The rules endpoint for counts and totals; jsonb documents use the exact defaults alone. */
const FIGURES = 'database'

/**
 * The database's rules for the diff engine the HTTP comparison uses (one notion of equality):
 * exact defaults, so 105.0 equals 105 by value and instants compare as instants, and the
 * count tolerance as a field rule on the compared `value` of counts and totals only.
 */
function parityRules(tolerance: number): CompareRules {
  return parseRules({
    defaults: { abs: 0, rel: 0, toleranceMs: 0 },
    endpoints: {
      [FIGURES]: {
        fields: {
          value: {
            rel: tolerance,
            reason: 'issue 4 §6: counts and totals agree within a tolerance (0.1 % by default)',
          },
        },
      },
    },
  })
}

/** A figure's identity: what was read, from which table, row and bucket. */
interface FigureId {
  table: string
  column: string
  key?: string
  bucket?: string
}

/** A value read from one database; jsonb documents arrive as text and are parsed once bounded. */
type Read = { kind: 'number'; id: FigureId; value: number } | { kind: 'jsonb'; id: FigureId; text: string }

const nameOf = (id: FigureId, path?: string): string =>
  `${id.table}.${id.column}${id.key === undefined ? '' : `[${id.key}]`}${id.bucket === undefined ? '' : `@${id.bucket}`}${path ? ` ${path}` : ''}`

async function connect(url: string): Promise<pg.Client> {
  // Read-only at the session level: nothing the harness runs can write either database.
  const client = new pg.Client({
    connectionString: url,
    options: '-c default_transaction_read_only=on -c TimeZone=UTC',
    application_name: 'overlord-ts-compare',
  })
  await client.connect()
  return client
}

type Row = Record<string, unknown>

/** `pg` returns `int8` and `numeric` as strings: numbers are compared as numbers, never as text. */
const toNumber = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v))

async function readFigures(
  client: pg.Client,
  since: string,
  closedBefore: string,
  bucketSeconds: number,
): Promise<Map<string, Read>> {
  const out = new Map<string, Read>()
  const put = (id: FigureId, v: unknown) => out.set(nameOf(id), { kind: 'number', id, value: toNumber(v) })
  for (const table of EVENT_TABLES) {
    const column = 'count(*)'
    const { rows } = await client.query<Row>(
      `SELECT character_name, count(*) AS n FROM ${table} WHERE timestamp >= $1 AND timestamp < $2 GROUP BY 1`,
      [since, closedBefore],
    )
    let total = 0
    for (const r of rows) {
      put({ table, column, key: String(r.character_name) }, r.n)
      total += toNumber(r.n)
    }
    put({ table, column }, total)
    const buckets = await client.query<Row>(
      `SELECT to_char(to_timestamp(floor(extract(epoch FROM timestamp) / $3) * $3) AT TIME ZONE 'UTC',
              'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS bucket, count(*) AS n
         FROM ${table} WHERE timestamp >= $1 AND timestamp < $2 GROUP BY 1`,
      [since, closedBefore, bucketSeconds],
    )
    for (const r of buckets.rows) put({ table, column, bucket: String(r.bucket) }, r.n)
  }
  const portals = await client.query<Row>('SELECT count(*) AS n FROM portals WHERE discovered_at >= $1', [
    since,
  ])
  put({ table: 'portals', column: 'count(*)' }, portals.rows[0]?.n)
  for (const [table, column] of TOTALS) {
    const { rows } = await client.query<Row>(`SELECT character_name, ${column} AS v FROM ${table}`)
    let sum = 0
    for (const r of rows) {
      put({ table, column, key: String(r.character_name) }, r.v)
      sum += toNumber(r.v)
    }
    put({ table, column: `sum(${column})` }, sum)
  }
  const combat = await client.query<Row>('SELECT character_name, lifetime::text AS doc FROM combat_stats')
  put({ table: 'combat_stats', column: 'count(*)' }, combat.rows.length)
  for (const r of combat.rows) {
    const id = { table: 'combat_stats', column: 'lifetime', key: String(r.character_name) }
    out.set(nameOf(id), { kind: 'jsonb', id, text: String(r.doc) })
  }
  return out
}

const relDiff = (p: number, s: number): number => (p === s ? 0 : Math.abs(p - s) / Math.max(Math.abs(p), 1))

/** Counts and totals: absent means zero rows, so zero. */
function compareNumbers(id: FigureId, p: number, s: number, rules: CompareRules): ParityCheck {
  const endpoint = rules.endpoints[FIGURES]
  const { differences } = compareDocs(
    normalize({ value: p }, endpoint),
    normalize({ value: s }, endpoint),
    endpoint,
    rules,
  )
  const check: ParityCheck = {
    name: nameOf(id),
    ...id,
    primary: p,
    shadow: s,
    relDiff: relDiff(p, s),
    ok: true,
  }
  const d = differences[0]
  if (d !== undefined) {
    check.ok = false
    check.detail = d.detail === undefined ? d.class : `${d.class} ${d.detail}`
  }
  return check
}

/** Parses a document read as text, refusing one nested too deep to walk or to write back as JSON. */
function parseBounded(text: string | undefined): { doc?: unknown; tooDeep?: true } {
  if (text === undefined) return {}
  if (textExceedsDepth(text, MAX_JSON_DEPTH)) return { tooDeep: true }
  return { doc: JSON.parse(text) as unknown }
}

/** The document sits under one key so the diff sees two objects even when a root is a scalar. */
const ROOT = '$'
const insideDoc = (path: string): string => path.replace(/^\$\.?/, '')

/** jsonb documents: one check per difference the diff engine finds, or one passing check. */
function compareDocuments(
  id: FigureId,
  pText: string | undefined,
  sText: string | undefined,
  rules: CompareRules,
): ParityCheck[] {
  const p = parseBounded(pText)
  const s = parseBounded(sText)
  const base = { name: nameOf(id), ...id }
  if (p.tooDeep || s.tooDeep) {
    const side = p.tooDeep && s.tooDeep ? 'both' : p.tooDeep ? 'primary' : 'shadow'
    return [
      {
        ...base,
        detail: `nested deeper than ${MAX_JSON_DEPTH} (${side}): not compared`,
        relDiff: 1,
        ok: false,
      },
    ]
  }
  if (pText === undefined || sText === undefined) {
    const present = pText === undefined ? { shadow: s.doc } : { primary: p.doc }
    const missing = pText === undefined ? 'primary' : 'shadow'
    return [{ ...base, ...present, detail: `no row in ${missing}`, relDiff: 1, ok: false }]
  }
  const { differences } = compareDocs(
    normalize({ [ROOT]: p.doc }, undefined),
    normalize({ [ROOT]: s.doc }, undefined),
    undefined,
    rules,
  )
  if (differences.length === 0) return [{ ...base, primary: p.doc, shadow: s.doc, relDiff: 0, ok: true }]
  return differences.map((d): ParityCheck => {
    const path = insideDoc(d.path)
    const numeric = typeof d.primary === 'number' && typeof d.shadow === 'number'
    return {
      name: nameOf(id, path),
      ...id,
      path,
      primary: d.primary,
      shadow: d.shadow,
      detail: d.detail === undefined ? d.class : `${d.class} ${d.detail}`,
      relDiff: numeric ? relDiff(d.primary as number, d.shadow as number) : 1,
      ok: false,
    }
  })
}

/**
 * Database parity (issue 4 §4): row counts and totals per table, per character and per closed
 * time bucket, plus combat lifetimes and the tee lag, over read-only sessions. Every figure is
 * compared as a value (numbers as numbers, jsonb as parsed JSON) by the comparison engine's diff,
 * and each check names its table, column, row or bucket, path and both values.
 */
export async function checkDatabases(options: DbParityOptions): Promise<DatabaseParity> {
  const rules = parityRules(options.tolerance ?? 0.001)
  const bucketSeconds = options.bucketSeconds ?? 3600
  const now = (options.now ?? Date.now)()
  const closeAfterMs = options.closeAfterMs ?? 60_000
  const openFrom = Math.floor((now - closeAfterMs) / 1000 / bucketSeconds) * bucketSeconds * 1000
  const closedBefore = new Date(openFrom).toISOString()
  const primary = await connect(options.primaryUrl)
  try {
    const shadow = await connect(options.shadowUrl)
    try {
      let since = options.since ?? null
      if (since === null) {
        const { rows } = await shadow.query<Row>('SELECT min(timestamp)::text AS t FROM telemetry_events')
        since = rows[0]?.t === null || rows[0]?.t === undefined ? null : String(rows[0].t)
      }
      const from = since ?? new Date(now).toISOString()
      // Each side twice, `settleMs` apart: a figure agrees when the two sides' ranges over that
      // window meet, so each side's write delay (shorter than settleMs) is not a divergence, while
      // a figure that holds still on both sides (an idle character, a settled bucket) is exact.
      const read = async (side: 'primary' | 'shadow', n: 1 | 2) => {
        const figures = await readFigures(
          side === 'primary' ? primary : shadow,
          from,
          closedBefore,
          bucketSeconds,
        )
        await options.onRead?.(side, n)
        return figures
      }
      const p = await read('primary', 1)
      const s = await read('shadow', 1)
      await sleep(options.settleMs ?? 1_000)
      const p2 = await read('primary', 2)
      const s2 = await read('shadow', 2)
      const checks: ParityCheck[] = []
      const text = (r: Read | undefined) => (r?.kind === 'jsonb' ? r.text : undefined)
      const value = (r: Read | undefined) => (r?.kind === 'number' ? r.value : 0)
      for (const name of new Set([...p.keys(), ...s.keys()])) {
        const pr = p.get(name)
        const sr = s.get(name)
        const id = (pr ?? sr)!.id
        // Every figure may move: totals while the fleet plays, and closed buckets too when a client
        // whose clock is behind sends a frame stamped into one (its receive time is now).
        if (pr?.kind === 'jsonb' || sr?.kind === 'jsonb') {
          const first = compareDocuments(id, text(pr), text(sr), rules)
          const later = [
            [p2, s],
            [p, s2],
            [p2, s2],
          ].map(([a, b]) => compareDocuments(id, text(a!.get(name)), text(b!.get(name)), rules))
          checks.push(...(later.find((c) => c.every((x) => x.ok)) ?? first))
        } else {
          const check = compareNumbers(id, value(pr), value(sr), rules)
          if (!check.ok) {
            const pa = value(pr)
            const pb = value(p2.get(name))
            const sa = value(sr)
            const sb = value(s2.get(name))
            if (
              Math.max(Math.min(pa, pb), Math.min(sa, sb)) <= Math.min(Math.max(pa, pb), Math.max(sa, sb))
            ) {
              check.ok = true
              check.relDiff = 0
              check.detail = `in motion: primary ${pa}→${pb}, shadow ${sa}→${sb} over ${options.settleMs ?? 1_000} ms`
            }
          }
          checks.push(check)
        }
      }
      checks.sort(
        (a, b) => Number(a.ok) - Number(b.ok) || b.relDiff - a.relDiff || a.name.localeCompare(b.name),
      )
      const teeLagMs = await teeLag(primary, shadow, from)
      const worst = checks.reduce((m, c) => Math.max(m, c.relDiff), 0)
      return { since, checks, worstRelDiff: worst, withinTolerance: checks.every((c) => c.ok), teeLagMs }
    } finally {
      await shadow.end()
    }
  } finally {
    await primary.end()
  }
}

async function teeLag(
  primary: pg.Client,
  shadow: pg.Client,
  since: string,
): Promise<DatabaseParity['teeLagMs']> {
  const sql = `SELECT character_name, timestamp::text AS ts, extract(epoch FROM received_at) * 1000 AS r
                 FROM telemetry_events WHERE timestamp >= $1 AND received_at IS NOT NULL
                 ORDER BY timestamp DESC LIMIT 5000`
  const p = await primary.query<Row>(sql, [since])
  const s = await shadow.query<Row>(sql, [since])
  const primaryAt = new Map(p.rows.map((r) => [`${String(r.character_name)}|${String(r.ts)}`, Number(r.r)]))
  const lags: number[] = []
  for (const r of s.rows) {
    const at = primaryAt.get(`${String(r.character_name)}|${String(r.ts)}`)
    if (at !== undefined) lags.push(Number(r.r) - at)
  }
  const { samples, p50, p95, max } = summarize(lags)
  return { samples, p50, p95, max }
}
