import type { DatabaseParity, ParityCheck } from './db-parity.ts'
import { type FieldNoise, fieldNoise } from './field-noise.ts'
import type { GateStatus } from './gate.ts'
import type { LedgerEntry, ShadowReadExample, ShadowReadLedgerEntry, ShadowReadWindow } from './ledger.ts'
import type { SweepResult } from './sweep.ts'

/** A diff cluster over the ledger: one path signature and class on one endpoint. */
export interface Cluster {
  endpoint: string
  signature: string
  class: string
  status: string
  firstSeen: string
  lastSeen: string
  total: number
  sweeps: number
  /** Counts per time bucket (the sparkline). */
  series: number[]
  trend: 'rising' | 'falling' | 'steady'
}

/** Everything the Markdown and HTML reports show, computed once from the ledger. */
export interface ReportData {
  generatedAt: string
  sweeps: number
  skippedLines: number
  from: string | null
  to: string | null
  verdicts: Record<string, number>
  endpoints: { name: string; sweeps: number; cleanRate: number; series: (number | null)[] }[]
  buckets: string[]
  clusters: Cluster[]
  worstFields: { signature: string; mismatches: number; endpoints: string[] }[]
  /** Noise, explanations and mismatches per endpoint and field over the whole ledger, worst first. */
  fieldNoise: FieldNoise[]
  latest: SweepResult | undefined
  gate: GateStatus | undefined
  /** Users' reads compared by `shadow-read`, over its windows in the ledger; absent without any. */
  userReads?: UserReads
}

/** One route of users' reads over every shadow-read window of the ledger. */
export interface UserReadRoute {
  route: string
  endpoint: boolean
  requests: number
  mirrored: number
  compared: number
  clean: number
  /** Clean share of the compared reads; null when none was compared. */
  cleanRate: number | null
  mismatched: number
  lagExplained: number
  sampledOut: number
  /** Queue full, or comparison backlog full. */
  dropped: number
  shadowErrors: number
  notCompared: number
}

/** The "User reads (shadow-read)" section (issue 10 §1). */
export interface UserReads {
  windows: number
  from: string
  to: string
  requests: number
  compared: number
  clean: number
  mismatched: number
  routes: UserReadRoute[]
  shadowErrorsByKind: Record<string, number>
  clusters: {
    route: string
    signature: string
    class: string
    count: number
    windows: number
    lastSeen: string
  }[]
  /** Side by side, from one window (`examplesFrom`). */
  examples: (ShadowReadExample & { route: string })[]
  examplesFrom: string | undefined
}

/** Sums shadow-read windows per route, busiest first; clusters over the windows, worst first. */
export function summarizeUserReads(
  entries: readonly ShadowReadLedgerEntry[],
  window: ShadowReadWindow | undefined,
): UserReads | undefined {
  if (entries.length === 0) return undefined
  const routes = new Map<string, UserReadRoute>()
  const clusters = new Map<string, UserReads['clusters'][number]>()
  const byKind: Record<string, number> = {}
  const sum = (o: Record<string, number | undefined>) =>
    Object.values(o).reduce<number>((a, b) => a + (b ?? 0), 0)
  for (const e of entries) {
    for (const r of e.routes) {
      let agg = routes.get(r.route)
      if (agg === undefined) {
        agg = {
          route: r.route,
          endpoint: r.endpoint,
          requests: 0,
          mirrored: 0,
          compared: 0,
          clean: 0,
          cleanRate: null,
          mismatched: 0,
          lagExplained: 0,
          sampledOut: 0,
          dropped: 0,
          shadowErrors: 0,
          notCompared: 0,
        }
        routes.set(r.route, agg)
      }
      agg.requests += r.requests
      agg.mirrored += r.mirrored
      agg.compared += r.compared
      agg.clean += r.clean
      agg.mismatched += r.mismatched
      agg.lagExplained += r.lagExplained
      agg.sampledOut += r.sampledOut
      agg.dropped += r.dropped.queue + r.dropped.judge
      agg.shadowErrors += sum(r.shadowErrors)
      agg.notCompared += sum(r.notCompared)
      for (const [kind, n] of Object.entries(r.shadowErrors)) byKind[kind] = (byKind[kind] ?? 0) + (n ?? 0)
      for (const c of r.clusters) {
        const key = `${r.route}|${c.class}|${c.signature}`
        const cl = clusters.get(key)
        if (cl === undefined) {
          clusters.set(key, {
            route: r.route,
            signature: c.signature,
            class: c.class,
            count: c.count,
            windows: 1,
            lastSeen: e.startedAt,
          })
        } else {
          cl.count += c.count
          cl.windows += 1
          cl.lastSeen = e.startedAt
        }
      }
    }
  }
  for (const r of routes.values()) r.cleanRate = r.compared === 0 ? null : r.clean / r.compared
  const list = [...routes.values()].sort((a, b) => b.requests - a.requests || a.route.localeCompare(b.route))
  const total = (k: 'requests' | 'compared' | 'clean' | 'mismatched') => entries.reduce((n, e) => n + e[k], 0)
  return {
    windows: entries.length,
    from: entries[0]!.startedAt,
    to: entries.at(-1)!.startedAt,
    requests: total('requests'),
    compared: total('compared'),
    clean: total('clean'),
    mismatched: total('mismatched'),
    routes: list,
    shadowErrorsByKind: byKind,
    clusters: [...clusters.values()].sort((a, b) => b.count - a.count),
    examples: (window?.routes ?? []).flatMap((r) => r.examples.map((x) => ({ route: r.route, ...x }))),
    examplesFrom: window?.id,
  }
}

const BUCKETS = 48

/** Aggregates ledger entries into time buckets, clusters and worst fields. */
export function buildReportData(
  entries: readonly LedgerEntry[],
  latest: SweepResult | undefined,
  gate: GateStatus | undefined,
  nowMs: number,
  skippedLines = 0,
  shadowReads: { entries: readonly ShadowReadLedgerEntry[]; examples?: ShadowReadWindow | undefined } = {
    entries: [],
  },
): ReportData {
  const times = entries.map((e) => Date.parse(e.startedAt))
  const t0 = times.length ? Math.min(...times) : nowMs
  const t1 = times.length ? Math.max(...times) : nowMs
  const width = Math.max(1, (t1 - t0 + 1) / BUCKETS)
  const bucketOf = (t: number) => Math.min(BUCKETS - 1, Math.floor((t - t0) / width))
  const buckets = Array.from({ length: BUCKETS }, (_, i) => new Date(t0 + i * width).toISOString())

  const verdicts: Record<string, number> = {}
  const eps = new Map<string, { sweeps: number; clean: number; b: { n: number; c: number }[] }>()
  const clusters = new Map<string, Cluster>()
  const fields = new Map<string, { mismatches: number; endpoints: Set<string> }>()
  entries.forEach((e, i) => {
    verdicts[e.verdict] = (verdicts[e.verdict] ?? 0) + 1
    const b = bucketOf(times[i]!)
    for (const ep of e.endpoints) {
      let agg = eps.get(ep.name)
      if (agg === undefined) {
        agg = { sweeps: 0, clean: 0, b: Array.from({ length: BUCKETS }, () => ({ n: 0, c: 0 })) }
        eps.set(ep.name, agg)
      }
      agg.sweeps += 1
      agg.b[b]!.n += 1
      if (ep.clean) {
        agg.clean += 1
        agg.b[b]!.c += 1
      }
      for (const c of ep.clusters) {
        const key = `${ep.name}|${c.class}|${c.signature}|${c.status}`
        let cl = clusters.get(key)
        if (cl === undefined) {
          cl = {
            endpoint: ep.name,
            signature: c.signature,
            class: c.class,
            status: c.status,
            firstSeen: e.startedAt,
            lastSeen: e.startedAt,
            total: 0,
            sweeps: 0,
            series: new Array<number>(BUCKETS).fill(0),
            trend: 'steady',
          }
          clusters.set(key, cl)
        }
        cl.lastSeen = e.startedAt
        cl.total += c.count
        cl.sweeps += 1
        cl.series[b]! += c.count
        if (c.status === 'mismatch') {
          const f = fields.get(c.signature) ?? { mismatches: 0, endpoints: new Set<string>() }
          f.mismatches += c.count
          f.endpoints.add(ep.name)
          fields.set(c.signature, f)
        }
      }
    }
  })
  for (const cl of clusters.values()) {
    const half = BUCKETS / 2
    const early = cl.series.slice(0, half).reduce((a, b) => a + b, 0)
    const late = cl.series.slice(half).reduce((a, b) => a + b, 0)
    cl.trend = late > early * 1.2 ? 'rising' : late < early * 0.8 ? 'falling' : 'steady'
  }
  return {
    generatedAt: new Date(nowMs).toISOString(),
    sweeps: entries.length,
    skippedLines,
    from: entries[0]?.startedAt ?? null,
    to: entries.at(-1)?.startedAt ?? null,
    verdicts,
    endpoints: [...eps.entries()]
      .map(([name, a]) => ({
        name,
        sweeps: a.sweeps,
        cleanRate: a.sweeps === 0 ? 0 : a.clean / a.sweeps,
        series: a.b.map((x) => (x.n === 0 ? null : x.c / x.n)),
      }))
      .sort((x, y) => x.cleanRate - y.cleanRate || x.name.localeCompare(y.name)),
    buckets,
    clusters: [...clusters.values()].sort((a, b) => b.total - a.total),
    worstFields: [...fields.entries()]
      .map(([signature, f]) => ({ signature, mismatches: f.mismatches, endpoints: [...f.endpoints].sort() }))
      .sort((a, b) => b.mismatches - a.mismatches)
      .slice(0, 20),
    fieldNoise: fieldNoise(entries),
    latest,
    gate,
    userReads: summarizeUserReads(shadowReads.entries, shadowReads.examples),
  }
}

/** The database checks a report lists: the failing ones, then a few of the others, each capped. */
export interface DatabaseChecks {
  failing: ParityCheck[]
  others: ParityCheck[]
  /** Checks left out by the caps (all of them are in the sweep's JSON file). */
  omittedFailing: number
  omittedOthers: number
}

/** Splits a sweep's database checks into failing and passing, in the sweep's order, capped. */
export function databaseChecks(database: DatabaseParity, maxFailing = 200, maxOthers = 20): DatabaseChecks {
  const failing = database.checks.filter((c) => !c.ok)
  const others = database.checks.filter((c) => c.ok)
  return {
    failing: failing.slice(0, maxFailing),
    others: others.slice(0, maxOthers),
    omittedFailing: Math.max(0, failing.length - maxFailing),
    omittedOthers: Math.max(0, others.length - maxOthers),
  }
}

/** A check's row: its character, or its time bucket; empty for a table-wide figure. */
export const checkRow = (c: ParityCheck): string =>
  c.key !== undefined ? c.key : c.bucket !== undefined ? `@${c.bucket}` : ''
