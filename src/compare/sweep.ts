import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { ERR } from '../protocol/errors.ts'
import type { Accounting } from './accounting.ts'
import { readAccounting } from './accounting.ts'
import type { DatabaseParity, DbParityOptions } from './db-parity.ts'
import { checkDatabases } from './db-parity.ts'
import type { EndpointSpec, Manifest } from './manifest.ts'
import { charactersIn, expandCharacters, expandTime } from './manifest.ts'
import { ReadHistory } from './history.ts'
import { normalize } from './normalize.ts'
import type { BackendClient, BackendLoad, ReadResult } from './poller.ts'
import type { CompareRules } from './rules.ts'
import { isExpired } from './rules.ts'
import { framesIn, type LagSample, type LagStats, lagStats } from './frames.ts'
import type { InstanceReads, InstanceTriage } from './triage.ts'
import { settleEndpoint, triageInstance } from './triage.ts'
import type { DiffClass, TriagedDifference } from './types.ts'
import type { WsLiveReport } from './ws-live.ts'
import { DIFF_CLASSES } from './types.ts'

/** A read that could not be made: an entry in the report, never a crash. */
export interface SweepError {
  endpoint: string
  url: string
  side: 'primary' | 'shadow'
  code: string
  message: string
}

/** The result of one endpoint (all its instances) in one sweep. */
export interface EndpointReport {
  name: string
  instances: number
  /** No mismatch and no error. */
  clean: boolean
  mismatches: number
  hard: number
  noise: number
  explained: number
  tolerated: number
  errors: number
  /** Entities (or documents) compared at the same frame, and the lag of those that were not. */
  paired: number
  lag: LagStats
  waived: Record<string, number>
  byClass: Record<DiffClass, number>
  /** Differences grouped by path signature and class (the cluster key), worst first. */
  clusters: { signature: string; class: DiffClass; status: string; count: number; rate: number }[]
  /** Side-by-side evidence, capped per endpoint. */
  examples: TriagedDifference[]
}

export type Verdict = 'parity' | 'mismatch' | 'error'

/** What one sweep found: written as `reports/sweep-<id>.json` and summarised in the ledger. */
export interface SweepResult {
  id: string
  startedAt: string
  finishedAt: string
  durationMs: number
  primary: string
  shadow: string
  verdict: Verdict
  characters: number
  requests: number
  /** Lag over every frame-paired endpoint: measured and reported, never a mismatch (issue 9 §1). */
  lag: LagStats & { assumedMs: number; readGapMs: { p50: number | null; max: number | null } }
  endpoints: EndpointReport[]
  errors: SweepError[]
  waivers: {
    id: string
    endpoint: string
    path: string
    owner: string
    expires: string
    expired: boolean
    suppressed: number
  }[]
  accounting?: Accounting
  database?: DatabaseParity
  /** What this sweep asked of each backend, and the limits it ran under (issue 9 §5). */
  load?: { primary: BackendLoad; shadow: BackendLoad }
}

/** Progress while a sweep works (the CLI prints it, tests may use it to act between reads). */
export type SweepEvent =
  | { kind: 'endpoint'; name: string; instances: number }
  | { kind: 'read'; endpoint: string; url: string; phase: 'first' | 'shadow' | 'second' }

export interface SweepOptions {
  primary: BackendClient
  shadow: BackendClient
  rules: CompareRules
  manifest: Manifest
  logger: Logger
  /** Instances read in parallel (each instance's three reads stay sequential and back to back). */
  concurrency?: number
  examplesPerEndpoint?: number
  /** Called after each read, awaited: progress for the CLI, a hook for tests to move the primary. */
  onEvent?: (event: SweepEvent) => void | Promise<void>
  /** Input accounting: the tee's metrics URL (optional); the shadow's `/metrics.json` is always read. */
  teeMetricsUrl?: string
  database?: DbParityOptions
  /** Earlier reads per URL (watch keeps one across sweeps); a fresh one when absent. */
  history?: ReadHistory
  /**
   * The browser feed's window for this sweep (issue 9 §3): called once the HTTP reads are done;
   * its report joins the endpoints as `ws-live`, its socket errors join the errors.
   */
  liveFeed?: () => Promise<WsLiveReport>
  now?: () => number
}

interface Triple {
  first: ReadResult
  shadow: ReadResult
  second: ReadResult
}

async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!
      await work(item)
    }
  })
  await Promise.all(runners)
}

/**
 * One sweep over every endpoint of the manifest: per instance, read primary, shadow, primary
 * (issue 4 §3), diff with the rules, cancel noise, and gather errors, lag, input accounting and
 * database parity into one {@link SweepResult}.
 */
export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { primary, shadow, rules, manifest } = options
  const now = options.now ?? Date.now
  const log = options.logger.child({ component: 'sweep' })
  const started = now()
  const id = `${new Date(started).toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`
  const errors: SweepError[] = []
  const gaps: number[] = []
  const marks = { primary: primary.mark(), shadow: shadow.mark() }
  let requests = 0

  const readTriple = async (endpoint: string, url: string): Promise<Triple> => {
    const first = await primary.get(url)
    await options.onEvent?.({ kind: 'read', endpoint, url, phase: 'first' })
    const shadowRead = await shadow.get(url)
    await options.onEvent?.({ kind: 'read', endpoint, url, phase: 'shadow' })
    const second = await primary.get(url)
    await options.onEvent?.({ kind: 'read', endpoint, url, phase: 'second' })
    requests += 3
    gaps.push(second.startedAt - first.startedAt)
    for (const [read, side] of [
      [first, 'primary'],
      [shadowRead, 'shadow'],
      [second, 'primary'],
    ] as const) {
      if (!read.ok) errors.push({ endpoint, url, side, code: read.code, message: read.message })
    }
    return { first, shadow: shadowRead, second }
  }

  const docOf = (spec: EndpointSpec, read: ReadResult & { ok: true }) =>
    spec.compare === 'status' ? { status: read.status } : { status: read.status, body: read.body }

  const triplesBy = new Map<string, { url: string; triple: Triple }[]>()
  const timeOf = (spec: EndpointSpec) => expandTime(spec.path, started)

  // The character list comes first: per-character endpoints depend on it.
  const charSpec = manifest.endpoints.find((e) => e.name === manifest.characters.endpoint)!
  const charUrl = timeOf(charSpec)
  const charTriple = await readTriple(charSpec.name, charUrl)
  triplesBy.set(charSpec.name, [{ url: charUrl, triple: charTriple }])
  const names = new Set<string>()
  for (const r of [charTriple.first, charTriple.shadow]) {
    if (r.ok) for (const n of charactersIn(r.body, manifest)) names.add(n)
  }
  const characters = [...names].sort()

  const work: { spec: EndpointSpec; url: string }[] = []
  for (const spec of manifest.endpoints) {
    if (spec === charSpec) continue
    const urls = expandCharacters(timeOf(spec), characters)
    triplesBy.set(spec.name, [])
    await options.onEvent?.({ kind: 'endpoint', name: spec.name, instances: urls.length })
    for (const url of urls) work.push({ spec, url })
  }
  await pool(work, options.concurrency ?? 16, async ({ spec, url }) => {
    const triple = await readTriple(spec.name, url)
    triplesBy.get(spec.name)!.push({ url, triple })
  })

  const history = options.history ?? new ReadHistory({ perUrl: rules.lag.history, maxAgeMs: rules.lag.maxMs })
  const waivedTotal: Record<string, number> = {}
  const endpoints: EndpointReport[] = []
  const allLag: LagSample[] = []
  let allPaired = 0
  // The character endpoint first: its measured lag sets how far a monotonic counter may trail.
  let lagMs = rules.lag.assumedMs
  let behind = false
  // Every read normalized first, and the primary's frames archived, so a shadow entity can be
  // paired with the primary's copy of its frame from any endpoint of this sweep (or a recent one).
  const order = [charSpec, ...manifest.endpoints.filter((e) => e !== charSpec)]
  const readsBy = new Map<string, { reads: InstanceReads; firstAt: number; secondAt: number }[]>()
  for (const spec of order) {
    const endpointRules = rules.endpoints[spec.name]
    const list: { reads: InstanceReads; firstAt: number; secondAt: number }[] = []
    for (const { url, triple } of triplesBy.get(spec.name) ?? []) {
      const { first, shadow: s, second } = triple
      if (!first.ok || !s.ok || !second.ok) continue
      const reads: InstanceReads = {
        url,
        first: normalize(docOf(spec, first), endpointRules),
        shadow: normalize(docOf(spec, s), endpointRules),
        second: normalize(docOf(spec, second), endpointRules),
        gapMs: second.startedAt - first.startedAt,
        at: s.startedAt,
        history: history.of(url),
        frame: (kind, key, side) => history.frame(kind, key, started, side),
        newestFrame: (kind, character, side) => history.newestFrame(kind, character, started, side),
      }
      for (const [doc, at] of [
        [reads.first, first.startedAt],
        [reads.second, second.startedAt],
      ] as const) {
        for (const f of framesIn(doc, endpointRules)) history.keepFrame(f.kind, f.key, at, f.value)
      }
      for (const f of framesIn(reads.shadow, endpointRules)) {
        history.keepFrame(f.kind, f.key, s.startedAt, f.value, 'shadow')
      }
      list.push({ reads, firstAt: first.startedAt, secondAt: second.startedAt })
    }
    readsBy.set(spec.name, list)
  }
  for (const spec of order) {
    const endpointRules = rules.endpoints[spec.name]
    const instances: InstanceTriage[] = []
    const entries = triplesBy.get(spec.name) ?? []
    for (const { reads, firstAt, secondAt } of readsBy.get(spec.name) ?? []) {
      instances.push(
        triageInstance(reads, { endpoint: spec.name, rules, endpointRules, nowMs: started, lagMs, behind }),
      )
      history.push(reads.url, 'primary', { at: firstAt, doc: reads.first })
      history.push(reads.url, 'primary', { at: secondAt, doc: reads.second })
      history.push(reads.url, 'shadow', { at: reads.at ?? secondAt, doc: reads.shadow })
    }
    const settled = settleEndpoint(instances, rules)
    const endpointLag = lagStats(settled.lag, settled.paired)
    allLag.push(...settled.lag)
    allPaired += settled.paired
    if (spec === charSpec && endpointLag.p95Ms !== null) lagMs = Math.max(lagMs, endpointLag.p95Ms)
    if (spec === charSpec) behind = endpointLag.behind > 0
    const errorCount = errors.filter((e) => e.endpoint === spec.name).length
    const mismatches = settled.differences.filter((d) => d.status === 'mismatch')
    const byClass = Object.fromEntries(DIFF_CLASSES.map((c) => [c, 0])) as Record<DiffClass, number>
    for (const d of mismatches) byClass[d.class] += 1
    const clusterMap = new Map<string, EndpointReport['clusters'][number]>()
    for (const d of settled.differences) {
      const key = `${d.status}|${d.class}|${d.signature}`
      const c = clusterMap.get(key)
      if (c === undefined) {
        const obs = settled.signatures[d.signature]?.observations ?? 1
        clusterMap.set(key, {
          signature: d.signature,
          class: d.class,
          status: d.status,
          count: 1,
          rate: 1 / obs,
        })
      } else {
        c.count += 1
        c.rate = c.count / (settled.signatures[d.signature]?.observations ?? c.count)
      }
    }
    for (const [wid, n] of Object.entries(settled.waived)) waivedTotal[wid] = (waivedTotal[wid] ?? 0) + n
    const examples = [...mismatches, ...settled.differences.filter((d) => d.status !== 'mismatch')].slice(
      0,
      options.examplesPerEndpoint ?? 20,
    )
    endpoints.push({
      name: spec.name,
      instances: entries.length,
      clean: mismatches.length === 0 && errorCount === 0,
      mismatches: mismatches.length,
      hard: mismatches.filter((d) => d.severity === 'hard').length,
      noise: settled.differences.length - mismatches.length,
      explained: settled.explained,
      tolerated: settled.tolerated,
      errors: errorCount,
      paired: settled.paired,
      lag: endpointLag,
      waived: settled.waived,
      byClass,
      clusters: [...clusterMap.values()].sort((a, b) => b.count - a.count),
      examples,
    })
  }

  if (options.liveFeed !== undefined) {
    try {
      const feed = await options.liveFeed()
      endpoints.push(feed)
      errors.push(...feed.errorEntries)
    } catch (err) {
      errors.push({
        endpoint: 'ws-live',
        url: '/ws/live',
        side: 'shadow',
        code: ERR.CMP_BACKEND,
        message: String(err),
      })
    }
  }

  let accounting: Accounting | undefined
  try {
    accounting = await readAccounting({ primary, shadow, teeMetricsUrl: options.teeMetricsUrl })
  } catch (err) {
    errors.push({
      endpoint: 'metrics',
      url: '/metrics.json',
      side: 'shadow',
      code: ERR.CMP_BACKEND,
      message: String(err),
    })
  }
  let database: DatabaseParity | undefined
  if (options.database !== undefined) {
    try {
      database = await checkDatabases(options.database)
    } catch (err) {
      errors.push({
        endpoint: 'database',
        url: '',
        side: 'shadow',
        code: ERR.CMP_BACKEND,
        message: String(err),
      })
    }
  }

  history.prune(started - rules.lag.maxMs)
  const lag = lagStats(allLag, allPaired)
  const finished = now()
  gaps.sort((a, b) => a - b)
  const anyMismatch = endpoints.some((e) => e.mismatches > 0) || database?.withinTolerance === false
  const verdict: Verdict = anyMismatch ? 'mismatch' : errors.length > 0 ? 'error' : 'parity'
  log.debug({ id, verdict, requests }, 'sweep done')
  return {
    id,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    primary: primary.url,
    shadow: shadow.url,
    verdict,
    characters: characters.length,
    requests,
    lag: {
      ...lag,
      assumedMs: rules.lag.assumedMs,
      readGapMs: { p50: gaps.length ? gaps[Math.floor(gaps.length / 2)]! : null, max: gaps.at(-1) ?? null },
    },
    endpoints,
    errors,
    waivers: rules.waivers.map((w) => ({
      id: w.id,
      endpoint: w.endpoint,
      path: w.path,
      owner: w.owner,
      expires: w.expires,
      expired: isExpired(w, started),
      suppressed: waivedTotal[w.id] ?? 0,
    })),
    ...(accounting === undefined ? {} : { accounting }),
    ...(database === undefined ? {} : { database }),
    load: { primary: primary.stats(marks.primary), shadow: shadow.stats(marks.shadow) },
  }
}
