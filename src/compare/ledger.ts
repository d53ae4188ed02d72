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

/** Reads the ledger; a torn last line (a crash mid-append) is skipped and counted. */
export async function readLedger(dir: string): Promise<{ entries: LedgerEntry[]; skipped: number }> {
  let text: string
  try {
    text = await readFile(join(dir, LEDGER_FILE), 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return { entries: [], skipped: 0 }
    throw err
  }
  const entries: LedgerEntry[] = []
  let skipped = 0
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      entries.push(JSON.parse(line) as LedgerEntry)
    } catch {
      skipped += 1
    }
  }
  return { entries, skipped }
}

/** Reads one sweep's full result (for side-by-side examples). */
export async function readSweep(dir: string, id: string): Promise<SweepResult | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, `sweep-${id}.json`), 'utf8')) as SweepResult
  } catch {
    return undefined
  }
}
