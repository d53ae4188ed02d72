import { summarize } from '../util/quantile.ts'
import pg from 'pg'

/** Read-only connections to `dereth` (primary) and `dereth_ts` (shadow). */
export interface DbParityOptions {
  primaryUrl: string
  shadowUrl: string
  /** Relative tolerance per figure (issue 4 §6: 0.1 %). */
  tolerance?: number
  /** Closed time buckets are this wide; the bucket holding "now - closeAfterMs" is still open. */
  bucketSeconds?: number
  closeAfterMs?: number
  /** Only rows since this instant count (the shadow's start); default: the shadow's first row. */
  since?: string
  now?: () => number
}

/** One compared figure. */
export interface ParityCheck {
  name: string
  primary: number
  shadow: number
  relDiff: number
  ok: boolean
}

export interface DatabaseParity {
  since: string | null
  checks: ParityCheck[]
  /** The worst relative difference over all checks. */
  worstRelDiff: number
  withinTolerance: boolean
  /** Tee lag: shadow `received_at` minus primary `received_at` for the same telemetry rows. */
  teeLagMs: { samples: number; p50: number | null; p95: number | null; max: number | null }
}

const EVENT_TABLES = ['telemetry_events', 'spawn_events', 'rare_events'] as const

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

async function figures(client: pg.Client, since: string, closedBefore: string, bucketSeconds: number) {
  const out = new Map<string, number>()
  const put = (name: string, v: unknown) => out.set(name, Number(v ?? 0))
  for (const table of EVENT_TABLES) {
    const { rows } = await client.query<Row>(
      `SELECT character_name, count(*) AS n FROM ${table} WHERE timestamp >= $1 AND timestamp < $2 GROUP BY 1`,
      [since, closedBefore],
    )
    let total = 0
    for (const r of rows) {
      put(`${table}[${String(r.character_name)}]`, r.n)
      total += Number(r.n)
    }
    put(`${table}.count`, total)
    const buckets = await client.query<Row>(
      `SELECT to_char(to_timestamp(floor(extract(epoch FROM timestamp) / $3) * $3) AT TIME ZONE 'UTC',
              'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS bucket, count(*) AS n
         FROM ${table} WHERE timestamp >= $1 AND timestamp < $2 GROUP BY 1`,
      [since, closedBefore, bucketSeconds],
    )
    for (const r of buckets.rows) put(`${table}@${String(r.bucket)}`, r.n)
  }
  const portals = await client.query<Row>('SELECT count(*) AS n FROM portals WHERE discovered_at >= $1', [
    since,
  ])
  put('portals.count', portals.rows[0]?.n)
  for (const [table, column] of [
    ['char_stats', 'total_kills'],
    ['rare_stats', 'total_rares'],
  ] as const) {
    const { rows } = await client.query<Row>(`SELECT character_name, ${column} AS v FROM ${table}`)
    let sum = 0
    for (const r of rows) {
      put(`${table}.${column}[${String(r.character_name)}]`, r.v)
      sum += Number(r.v)
    }
    put(`${table}.${column}`, sum)
  }
  const combat = await client.query<Row>(
    `SELECT character_name, md5(lifetime::text) AS digest FROM combat_stats`,
  )
  const digests = new Map(combat.rows.map((r) => [String(r.character_name), String(r.digest)]))
  put('combat_stats.count', combat.rows.length)
  return { figures: out, digests }
}

const relDiff = (p: number, s: number): number => (p === s ? 0 : Math.abs(p - s) / Math.max(Math.abs(p), 1))

/**
 * Database parity (issue 4 §4): row counts and totals per table, per character and per closed
 * time bucket, plus combat lifetimes and the tee lag, over read-only sessions.
 */
export async function checkDatabases(options: DbParityOptions): Promise<DatabaseParity> {
  const tolerance = options.tolerance ?? 0.001
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
      const p = await figures(primary, from, closedBefore, bucketSeconds)
      const s = await figures(shadow, from, closedBefore, bucketSeconds)
      const checks: ParityCheck[] = []
      for (const name of new Set([...p.figures.keys(), ...s.figures.keys()])) {
        const pv = p.figures.get(name) ?? 0
        const sv = s.figures.get(name) ?? 0
        const d = relDiff(pv, sv)
        checks.push({ name, primary: pv, shadow: sv, relDiff: d, ok: d <= tolerance })
      }
      let lifetimeDiffers = 0
      for (const name of new Set([...p.digests.keys(), ...s.digests.keys()])) {
        if (p.digests.get(name) !== s.digests.get(name)) lifetimeDiffers += 1
      }
      checks.push({
        name: 'combat_stats.lifetime differing characters',
        primary: 0,
        shadow: lifetimeDiffers,
        relDiff: lifetimeDiffers === 0 ? 0 : 1,
        ok: lifetimeDiffers === 0,
      })
      checks.sort((a, b) => b.relDiff - a.relDiff || a.name.localeCompare(b.name))
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
