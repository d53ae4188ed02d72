import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SweepResult, Verdict } from './sweep.ts'
import type { DiffClass } from './types.ts'

export const LEDGER_FILE = 'ledger.ndjson'

/** Clusters kept per endpoint in a ledger line, so a bad sweep cannot bloat the ledger. */
export const LEDGER_CLUSTERS = 25

/** One diff cluster of one endpoint in one sweep. */
export interface LedgerCluster {
  signature: string
  class: DiffClass
  status: string
  count: number
  /**
   * The share of the signature's observations in the sweep that differed this way; absent from
   * lines written before it was recorded (unknown).
   */
  rate?: number
}

/** One line of the append-only ledger: what the gate and the trend charts need from a sweep. */
export interface LedgerEntry {
  id: string
  startedAt: string
  durationMs: number
  verdict: Verdict
  characters: number
  requests: number
  lagMs: { p50: number | null; p95: number | null; max: number | null }
  endpoints: {
    name: string
    clean: boolean
    mismatches: number
    hard: number
    noise: number
    explained: number
    errors: number
    clusters: LedgerCluster[]
    /** Clusters left out past {@link LEDGER_CLUSTERS}; absent from older lines (unknown). */
    clustersDropped?: number
  }[]
  errors: number
  waived: Record<string, number>
  database?: { worstRelDiff: number; withinTolerance: boolean }
  accounting?: { lostInTransit: number | null; notApplied: number | null }
}

/** The ledger line of a sweep (clusters capped at {@link LEDGER_CLUSTERS}, the count left out kept). */
export function toLedgerEntry(sweep: SweepResult): LedgerEntry {
  const waived: Record<string, number> = {}
  for (const w of sweep.waivers) if (w.suppressed > 0) waived[w.id] = w.suppressed
  const entry: LedgerEntry = {
    id: sweep.id,
    startedAt: sweep.startedAt,
    durationMs: sweep.durationMs,
    verdict: sweep.verdict,
    characters: sweep.characters,
    requests: sweep.requests,
    lagMs: { p50: sweep.lag.p50Ms, p95: sweep.lag.p95Ms, max: sweep.lag.maxMs },
    endpoints: sweep.endpoints.map((e) => ({
      name: e.name,
      clean: e.clean,
      mismatches: e.mismatches,
      hard: e.hard,
      noise: e.noise,
      explained: e.explained,
      errors: e.errors,
      clusters: e.clusters
        .slice(0, LEDGER_CLUSTERS)
        .map(({ signature, class: cls, status, count, rate }) => ({
          signature,
          class: cls,
          status,
          count,
          rate,
        })),
      clustersDropped: Math.max(0, e.clusters.length - LEDGER_CLUSTERS),
    })),
    errors: sweep.errors.length,
    waived,
  }
  if (sweep.database !== undefined) {
    entry.database = {
      worstRelDiff: sweep.database.worstRelDiff,
      withinTolerance: sweep.database.withinTolerance,
    }
  }
  if (sweep.accounting !== undefined) {
    entry.accounting = {
      lostInTransit: sweep.accounting.lostInTransit,
      notApplied: sweep.accounting.notApplied,
    }
  }
  return entry
}

/** Writes `sweep-<id>.json` and appends one line to the ledger (never rewritten). */
export async function recordSweep(dir: string, sweep: SweepResult): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, `sweep-${sweep.id}.json`)
  await writeFile(file, `${JSON.stringify(sweep, null, 2)}\n`)
  await appendFile(join(dir, LEDGER_FILE), `${JSON.stringify(toLedgerEntry(sweep))}\n`, { flag: 'a' })
  return file
}

/**
 * Reads the ledger; a torn last line (a crash mid-append) is skipped and counted. `entries` are the
 * sweeps' lines only (what the gate, the trends and the reports judge); a line with a `kind` never
 * counts as a sweep: `shadow-read` windows come apart in `shadowReads`, others (`cutover` events) are
 * left to their own readers.
 */
export async function readLedger(dir: string): Promise<{
  entries: LedgerEntry[]
  skipped: number
  shadowReads: ShadowReadLedgerEntry[]
  cutovers: CutoverLedgerEntry[]
}> {
  let text: string
  try {
    text = await readFile(join(dir, LEDGER_FILE), 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT')
      return { entries: [], skipped: 0, shadowReads: [], cutovers: [] }
    throw err
  }
  const entries: LedgerEntry[] = []
  const shadowReads: ShadowReadLedgerEntry[] = []
  const cutovers: CutoverLedgerEntry[] = []
  let skipped = 0
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      skipped += 1
      continue
    }
    const kind = (parsed as { kind?: unknown } | null)?.kind
    if (kind === undefined) entries.push(parsed as LedgerEntry)
    else if (kind === SHADOW_READ_KIND) shadowReads.push(parsed as ShadowReadLedgerEntry)
    else if (kind === CUTOVER_KIND) cutovers.push(parsed as CutoverLedgerEntry)
  }
  return { entries, skipped, shadowReads, cutovers }
}

/** The `kind` of a `cutover flip`/`rollback` ledger line. */
export const CUTOVER_KIND = 'cutover'

/** A flip or rollback as recorded (src/cutover/switch.ts writes it, with the commands it ran). */
export interface CutoverLedgerEntry {
  kind: typeof CUTOVER_KIND
  action: 'flip' | 'rollback'
  at: string
  by: string
  reason: string
  forced: boolean
  /** The upstream `host:port` the live paths went to before, and after. */
  from: string | null
  to: string
}

/** One line saying where the live paths go since the last flip or rollback. */
export function describeCutover(e: CutoverLedgerEntry): string {
  const side = e.action === 'flip' ? 'the TypeScript tracker' : 'the Python tracker'
  return `live paths: ${side} at ${e.to} since ${e.at} (${e.action} by ${e.by}${e.forced ? ', forced' : ''}: ${e.reason})`
}

/** Reads one sweep's full result (for side-by-side examples). */
export async function readSweep(dir: string, id: string): Promise<SweepResult | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, `sweep-${id}.json`), 'utf8')) as SweepResult
  } catch {
    return undefined
  }
}

/** The `kind` of a shadow-read window's ledger line (a sweep's line has no `kind`). */
export const SHADOW_READ_KIND = 'shadow-read'

/**
 * Why a read got no comparable answer from the shadow; `unavailable`: not sent, the shadow having
 * failed every recent mirror (shadow-read's circuit breaker).
 */
export type ShadowErrorKind =
  | 'timeout'
  | 'refused'
  | 'reset'
  | 'error'
  | 'status-5xx'
  | 'too-large'
  | 'unavailable'

/** One route's figures over one shadow-read window (issue 10 §1). */
export interface ShadowReadRoute {
  /** The catalog endpoint's name, or the path pattern of a route the catalog does not have (`/inv/*`). */
  route: string
  /** Whether the route is a catalog endpoint, whose GETs are mirrored and compared. */
  endpoint: boolean
  requests: number
  /** Proxied to the primary only, by reason: `method`, `upgrade`, `no-endpoint`. */
  notCompared: Record<string, number>
  /** GETs left out by the sampling rate. */
  sampledOut: number
  /** Mirrors dropped: the shadow queue was full, or the comparison backlog was. */
  dropped: { queue: number; judge: number }
  /** GETs sent (or queued) to the shadow. */
  mirrored: number
  shadowErrors: Partial<Record<ShadowErrorKind, number>>
  /** Mirrored, but the user's own answer could not be compared: cut short, too large, or a 304. */
  primaryUncomparable: number
  /** Pairs of answers judged by the engine. */
  compared: number
  /** Judged with no mismatch. */
  clean: number
  /** Of the clean, those with differences the engine explained as lag. */
  lagExplained: number
  /** Judged with at least one mismatch. */
  mismatched: number
  waived: Record<string, number>
  /** Mismatches by path signature and class, most frequent first. */
  clusters: LedgerCluster[]
  clustersDropped?: number
}

/** A mismatch a user's read showed, side by side. */
export interface ShadowReadExample {
  url: string
  /** When the user's request arrived. */
  at: string
  path: string
  signature: string
  class: DiffClass
  severity: string
  /** The values, or the first 500 characters of their JSON followed by `…` when longer. */
  primary?: unknown
  shadow?: unknown
}

/** One shadow-read window, as written to `shadow-read-<id>.json`. */
export interface ShadowReadWindow {
  kind: typeof SHADOW_READ_KIND
  id: string
  startedAt: string
  finishedAt: string
  durationMs: number
  primary: string
  shadow: string
  sample: number
  limits: { queue: number; concurrency: number; shadowTimeoutMs: number; maxBodyBytes: number }
  requests: number
  compared: number
  clean: number
  mismatched: number
  /** How far the shadow's frames trailed the primary's in the reads compared (never a mismatch). */
  lag: {
    paired: number
    behind: number
    ahead: number
    p50Ms: number | null
    p95Ms: number | null
    maxMs: number | null
  }
  /** Primary answers not kept for lag pairing because the comparison backlog was full. */
  historySkipped: number
  routes: (ShadowReadRoute & { examples: ShadowReadExample[] })[]
}

/** A shadow-read window's ledger line: the window without its examples, clusters capped. */
export interface ShadowReadLedgerEntry extends Omit<ShadowReadWindow, 'routes' | 'finishedAt' | 'limits'> {
  routes: ShadowReadRoute[]
}

/** The ledger line of a shadow-read window. */
export function toShadowReadLedgerEntry(window: ShadowReadWindow): ShadowReadLedgerEntry {
  const { routes, finishedAt: _f, limits: _l, ...rest } = window
  return {
    ...rest,
    routes: routes.map(({ examples: _e, clusters, ...route }) => ({
      ...route,
      clusters: clusters.slice(0, LEDGER_CLUSTERS),
      clustersDropped: Math.max(0, clusters.length - LEDGER_CLUSTERS),
    })),
  }
}

/** Writes `shadow-read-<id>.json` and appends its line to the ledger (sweep readers skip it). */
export async function recordShadowRead(dir: string, window: ShadowReadWindow): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, `shadow-read-${window.id}.json`)
  await writeFile(file, `${JSON.stringify(window, null, 2)}\n`)
  await appendFile(join(dir, LEDGER_FILE), `${JSON.stringify(toShadowReadLedgerEntry(window))}\n`, {
    flag: 'a',
  })
  return file
}

/** Reads one shadow-read window's file (for its examples). */
export async function readShadowReadWindow(dir: string, id: string): Promise<ShadowReadWindow | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, `shadow-read-${id}.json`), 'utf8')) as ShadowReadWindow
  } catch {
    return undefined
  }
}
