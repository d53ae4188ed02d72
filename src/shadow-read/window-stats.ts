import { randomUUID } from 'node:crypto'
import { type LagSample, lagStats } from '../compare/frames.ts'
import type {
  ShadowErrorKind,
  ShadowReadExample,
  ShadowReadRoute,
  ShadowReadWindow,
} from '../compare/ledger.ts'
import type { PairVerdict } from './judge.ts'

/** Why a request was proxied to the primary only. */
export type NotComparedReason = 'method' | 'upgrade' | 'no-endpoint'

interface RouteAgg {
  route: ShadowReadRoute
  clusters: Map<string, { signature: string; class: ShadowReadExample['class']; count: number }>
  examples: ShadowReadExample[]
  exampleSignatures: Set<string>
}

/** Lag samples kept per window for its figures (a thousand characters, ten `/live` reads). */
const MAX_LAG_SAMPLES = 10_000

export interface WindowMeta {
  primary: string
  shadow: string
  sample: number
  limits: ShadowReadWindow['limits']
  examplesPerRoute: number
}

/**
 * The figures of one shadow-read window, per route (issue 10 §1): volume, what was and was not
 * compared and why, verdicts, mismatch clusters and a few examples of each. Pure: the proxy
 * records events, {@link take} closes the window and starts the next.
 */
export class WindowStats {
  readonly #meta: WindowMeta
  readonly #now: () => number
  #startedAt: number
  #routes = new Map<string, RouteAgg>()
  #lag: LagSample[] = []
  #paired = 0
  #historySkipped = 0

  constructor(meta: WindowMeta, now: () => number = Date.now) {
    this.#meta = meta
    this.#now = now
    this.#startedAt = now()
  }

  #route(label: string, endpoint: boolean): RouteAgg {
    let agg = this.#routes.get(label)
    if (agg === undefined) {
      agg = {
        route: {
          route: label,
          endpoint,
          requests: 0,
          notCompared: {},
          sampledOut: 0,
          dropped: { queue: 0, judge: 0 },
          mirrored: 0,
          shadowErrors: {},
          primaryUncomparable: 0,
          compared: 0,
          clean: 0,
          lagExplained: 0,
          mismatched: 0,
          waived: {},
          clusters: [],
        },
        clusters: new Map(),
        examples: [],
        exampleSignatures: new Set(),
      }
      this.#routes.set(label, agg)
    }
    return agg
  }

  request(label: string, endpoint: boolean): void {
    this.#route(label, endpoint).route.requests += 1
  }

  notCompared(label: string, endpoint: boolean, reason: NotComparedReason): void {
    const nc = this.#route(label, endpoint).route.notCompared
    nc[reason] = (nc[reason] ?? 0) + 1
  }

  sampledOut(label: string): void {
    this.#route(label, true).route.sampledOut += 1
  }

  dropped(label: string, where: 'queue' | 'judge'): void {
    this.#route(label, true).route.dropped[where] += 1
  }

  mirrored(label: string): void {
    this.#route(label, true).route.mirrored += 1
  }

  shadowError(label: string, kind: ShadowErrorKind): void {
    const errors = this.#route(label, true).route.shadowErrors
    errors[kind] = (errors[kind] ?? 0) + 1
  }

  primaryUncomparable(label: string): void {
    this.#route(label, true).route.primaryUncomparable += 1
  }

  historySkipped(): void {
    this.#historySkipped += 1
  }

  /** One judged pair: its verdict, clusters, lag, and an example per new mismatch signature. */
  verdict(label: string, url: string, at: number, verdict: PairVerdict): void {
    const agg = this.#route(label, true)
    const r = agg.route
    r.compared += 1
    if (verdict.mismatchCount === 0) {
      r.clean += 1
      if (verdict.explained > 0 || verdict.lag.length > 0) r.lagExplained += 1
    } else r.mismatched += 1
    for (const [id, n] of Object.entries(verdict.waived)) r.waived[id] = (r.waived[id] ?? 0) + n
    for (const m of verdict.mismatches) {
      const key = `${m.class}|${m.signature}`
      const c = agg.clusters.get(key)
      if (c === undefined) agg.clusters.set(key, { signature: m.signature, class: m.class, count: 1 })
      else c.count += 1
      if (agg.examples.length < this.#meta.examplesPerRoute && !agg.exampleSignatures.has(key)) {
        agg.exampleSignatures.add(key)
        agg.examples.push({
          url,
          at: new Date(at).toISOString(),
          path: m.path,
          signature: m.signature,
          class: m.class,
          severity: m.severity,
          ...(m.primary === undefined ? {} : { primary: m.primary }),
          ...(m.shadow === undefined ? {} : { shadow: m.shadow }),
        })
      }
    }
    this.#paired += verdict.paired
    const room = MAX_LAG_SAMPLES - this.#lag.length
    if (room > 0) this.#lag.push(...verdict.lag.slice(0, room))
  }

  /** Closes the window: its figures, routes by volume; the next window starts empty now. */
  take(): ShadowReadWindow {
    const finished = this.#now()
    const started = this.#startedAt
    const routes = [...this.#routes.values()]
      .map((agg) => ({
        ...agg.route,
        clusters: [...agg.clusters.values()]
          .sort((a, b) => b.count - a.count)
          .map((c) => ({ signature: c.signature, class: c.class, status: 'mismatch', count: c.count })),
        examples: agg.examples,
      }))
      .sort((a, b) => b.requests - a.requests || a.route.localeCompare(b.route))
    const lag = lagStats(this.#lag, this.#paired)
    const sum = (k: 'requests' | 'compared' | 'clean' | 'mismatched') => routes.reduce((n, r) => n + r[k], 0)
    const window: ShadowReadWindow = {
      kind: 'shadow-read',
      id: `${new Date(started).toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      primary: this.#meta.primary,
      shadow: this.#meta.shadow,
      sample: this.#meta.sample,
      limits: this.#meta.limits,
      requests: sum('requests'),
      compared: sum('compared'),
      clean: sum('clean'),
      mismatched: sum('mismatched'),
      lag: {
        paired: lag.paired,
        behind: lag.behind,
        ahead: lag.ahead,
        p50Ms: lag.p50Ms,
        p95Ms: lag.p95Ms,
        maxMs: lag.maxMs,
      },
      historySkipped: this.#historySkipped,
      routes,
    }
    this.#startedAt = finished
    this.#routes = new Map()
    this.#lag = []
    this.#paired = 0
    this.#historySkipped = 0
    return window
  }
}
