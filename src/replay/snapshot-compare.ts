import type { RecordedResponse } from '../capture/format.ts'
import { ReadHistory } from '../compare/history.ts'
import {
  charactersIn,
  type EndpointSpec,
  expandCharacters,
  expandTime,
  loadManifest,
  type Manifest,
} from '../compare/manifest.ts'
import { sameJson } from '../compare/equality.ts'
import { normalize } from '../compare/normalize.ts'
import { type CompareRules, loadRules } from '../compare/rules.ts'
import type { NormalizedDoc } from '../compare/normalize.ts'
import { framesIn, type LagSample } from '../compare/frames.ts'
import { settleEndpoint, triageInstance, valueAt } from '../compare/triage.ts'

/** One place where a replayed response differs from the recorded one. */
export interface Difference {
  /** JSON path inside the compared document (`status`, `body.players[Larsson].kills`). */
  path: string
  expected: unknown
  actual: unknown
  /** The engine's class (`value`, `missing_entity`, `order`...). */
  class: string
  detail?: string
}

/** The verdict on one recorded response. */
export interface SnapshotJudgement {
  /** The catalog endpoint the path was expanded from; undefined when the catalog does not have it. */
  endpoint: string | undefined
  differences: Difference[]
  /** Differences the engine explained as lag (the recorded primary's cache or write delay). */
  explained: number
  /**
   * Differences at paths the primary already held before the capture began (its baseline): history
   * the captured frames cannot reproduce, reported apart and not judged.
   */
  preExisting: Difference[]
  lag: LagSample[]
}

/**
 * Judges a replay's responses against the recorded primary's with the comparison engine itself
 * (issue 9 §8): the catalog names each recorded path's endpoint (expanded from its template, never
 * matched back by pattern), and the same triage as `sweep` applies: keyed entities, frame pairing,
 * time-series ends, exact values unless `compare/rules.json` says otherwise, live waivers. The
 * recorded snapshot stands for both primary reads (no noise); earlier snapshots are the history
 * that pairs frames across the primary's `/live` cache.
 */
export class SnapshotJudge {
  readonly #rules: CompareRules
  readonly #manifest: Manifest
  readonly #history: ReadHistory
  readonly #nowMs: number
  readonly #baseline = new Map<string, NormalizedDoc>()
  /** The baseline's responses as recorded, to tell a document the capture never changed. */
  readonly #baselineRaw = new Map<string, RecordedResponse>()

  constructor(rules: CompareRules, manifest: Manifest, nowMs = Date.now()) {
    this.#rules = rules
    this.#manifest = manifest
    this.#nowMs = nowMs
    this.#history = new ReadHistory({ perUrl: rules.lag.history, maxAgeMs: rules.lag.maxMs })
  }

  /**
   * Which catalog endpoint produced each recorded path of a snapshot taken at `t`; the recorded
   * frames are archived on the way, so any path of the snapshot can pair with them.
   */
  endpointsOf(responses: Record<string, RecordedResponse>, t: number): Map<string, EndpointSpec> {
    const live =
      responses[this.#manifest.endpoints.find((e) => e.name === this.#manifest.characters.endpoint)!.path]
    const characters = live === undefined ? [] : charactersIn(live.body, this.#manifest)
    const out = new Map<string, EndpointSpec>()
    for (const spec of this.#manifest.endpoints) {
      for (const url of expandCharacters(expandTime(spec.path, t), characters)) out.set(url, spec)
    }
    for (const [path, recorded] of Object.entries(responses)) {
      const spec = out.get(path)
      if (spec === undefined || spec.compare === 'status') continue
      const endpointRules = this.#rules.endpoints[spec.name]
      const doc = normalize({ status: recorded.status, body: recorded.body }, endpointRules)
      for (const f of framesIn(doc, endpointRules)) this.#history.keepFrame(f.kind, f.key, t, f.value)
    }
    return out
  }

  /**
   * The primary's state before the capture's first frame (`capture --allow-existing`): a difference
   * whose path, or an entity above it, is in here is pre-existing history, not a divergence.
   */
  baseline(responses: Record<string, RecordedResponse>, t: number): void {
    const specs = this.endpointsOf(responses, t)
    for (const [path, recorded] of Object.entries(responses)) {
      const spec = specs.get(path)
      const endpointRules = spec === undefined ? undefined : this.#rules.endpoints[spec.name]
      this.#baseline.set(path, normalize({ status: recorded.status, body: recorded.body }, endpointRules))
      this.#baselineRaw.set(path, recorded)
    }
  }

  #preExisting(path: string, d: { path: string }): boolean {
    const base = this.#baseline.get(path)
    if (base === undefined) return false
    // An entity the difference lies in (or is) was already there: `body.players[Larsson]`.
    let prefix = ''
    for (const [token] of d.path.matchAll(/\[[^\]]*\]|\.?[^.[]+/g)) {
      prefix += token
      if (token.startsWith('[') && valueAt(base, { path: prefix }) !== undefined) return true
    }
    // A total or list the primary had already accumulated.
    const v = valueAt(base, d)
    if (typeof v === 'number') return v !== 0
    if (typeof v === 'object' && v !== null) return Object.keys(v).length > 0
    return false
  }

  /** Compares one path's recorded and replayed responses at snapshot instant `t`. */
  judge(
    path: string,
    spec: EndpointSpec | undefined,
    expected: RecordedResponse,
    actual: RecordedResponse,
    t: number,
  ): SnapshotJudgement {
    const name = spec?.name ?? path
    const endpointRules = spec === undefined ? undefined : this.#rules.endpoints[spec.name]
    const docOf = (r: RecordedResponse) =>
      spec?.compare === 'status' ? { status: r.status } : { status: r.status, body: r.body }
    const first = normalize(docOf(expected), endpointRules)
    const shadow = normalize(docOf(actual), endpointRules)
    const inst = triageInstance(
      {
        url: path,
        first,
        second: first,
        shadow,
        gapMs: 0,
        at: t,
        history: this.#history.of(path),
        frame: (kind, key) => this.#history.frame(kind, key, t),
      },
      {
        endpoint: name,
        rules: this.#rules,
        endpointRules,
        nowMs: this.#nowMs,
        lagMs: this.#rules.lag.assumedMs,
      },
    )
    this.#history.push(path, 'primary', { at: t, doc: first })
    this.#history.push(path, 'shadow', { at: t, doc: shadow })
    const settled = settleEndpoint([inst], this.#rules)
    const found = settled.differences
      .filter((d) => d.status === 'mismatch')
      .map((d) => ({
        path: d.path,
        expected: d.primary,
        actual: d.shadow,
        class: d.class,
        ...(d.detail === undefined ? {} : { detail: d.detail }),
      }))
    // A document the primary held before the capture and still served unchanged (a character's
    // stats, sent once per login before the capture began): nothing in the capture made it, so
    // nothing in the replay can; every difference on it is pre-existing.
    const before = this.#baselineRaw.get(path)
    const unchanged =
      before !== undefined && before.status === expected.status && sameJson(before.body, expected.body)
    const preExisting = found.filter((d) => unchanged || this.#preExisting(path, d))
    return {
      endpoint: spec?.name,
      differences: found.filter((d) => !preExisting.includes(d)),
      preExisting,
      explained: settled.explained,
      lag: settled.lag,
    }
  }
}

/** The engine as the operator configured it in `compare/` (rules, waivers, catalog). */
export async function loadJudge(dir = 'compare'): Promise<SnapshotJudge> {
  const [rules, manifest] = await Promise.all([
    loadRules(`${dir}/rules.json`, `${dir}/waivers.json`),
    loadManifest(`${dir}/endpoints.json`),
  ])
  return new SnapshotJudge(rules, manifest)
}
