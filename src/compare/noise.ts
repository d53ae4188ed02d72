import { pick } from '../util/json-path.ts'
import { quantile } from '../util/quantile.ts'
import { parseInstant } from '../protocol/time.ts'
import { compareDocs } from './diff.ts'
import type { NormalizedDoc } from './normalize.ts'
import type { CompareRules, EndpointRules } from './rules.ts'
import { fieldRule, findWaiver } from './rules.ts'
import type { Difference, TriagedDifference } from './types.ts'

/** The three reads of one endpoint instance: primary, shadow, primary again (old(t), new, old(t+Δ)). */
export interface TripleRead {
  url: string
  first: NormalizedDoc
  shadow: NormalizedDoc
  second: NormalizedDoc
  /** Milliseconds between the starts of the two primary reads. */
  gapMs: number
}

/** One instance after waivers and explanation; `unexplained` awaits the endpoint-wide noise decision. */
export interface InstanceTriage {
  url: string
  unexplained: Difference[]
  explained: Difference[]
  waived: Record<string, number>
  tolerated: number
  /** Per signature, how many nodes changed between the two primary reads. */
  noise: Map<string, number>
  observations: Map<string, number>
  /** The primary's second document, to show `primaryAfter` as evidence. */
  second: NormalizedDoc
}

export interface TriageContext {
  endpoint: string
  rules: CompareRules
  endpointRules: EndpointRules | undefined
  nowMs: number
  /** The lag lead allowances may assume (measured, else `rules.lag.assumedMs`). */
  lagMs: number
}

/** The value at a concrete path of a normalized document, following the diff's path syntax. */
export function valueAt(doc: NormalizedDoc, diffs: { path: string }): unknown {
  return lookup.get(doc)?.get(diffs.path)
}

// Paths are resolved through an index built once per document (1 000 players → one walk, not 1 000).
const lookup = new WeakMap<NormalizedDoc, Map<string, unknown>>()

function indexDoc(doc: NormalizedDoc): void {
  if (lookup.has(doc)) return
  const index = new Map<string, unknown>()
  const walk = (node: unknown, sig: string, path: string): void => {
    index.set(path, node)
    if (typeof node !== 'object' || node === null) return
    const collection = Array.isArray(node) || doc.keyed.has(sig)
    for (const [k, v] of Object.entries(node)) {
      const childSig = collection ? `${sig}[]` : sig === '' ? k : `${sig}.${k}`
      const childPath = collection ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`
      walk(v, childSig, childPath)
    }
  }
  walk(doc.value, '', '')
  lookup.set(doc, index)
}

function between(
  first: unknown,
  shadow: unknown,
  second: unknown,
  lead: number,
  asInstant: boolean,
): boolean {
  const conv = (v: unknown): number | undefined => {
    if (typeof v === 'number') return v
    if (asInstant) {
      const micros = parseInstant(v)
      return micros === undefined ? undefined : micros / 1000
    }
    return undefined
  }
  const a = conv(first)
  const s = conv(shadow)
  const b = conv(second)
  if (a === undefined || s === undefined || b === undefined) return false
  return s >= Math.min(a, b) - lead && s <= Math.max(a, b)
}

/**
 * Triage of one instance (issue 4 §3): differences covered by a live waiver are counted per waiver;
 * a shadow value equal to the primary's second read, or between the two reads for a monotonic
 * number or timestamp (allowing the lead the lag explains), is explained; what changed between the
 * two primary reads is counted as noise per signature.
 */
export function triageInstance(read: TripleRead, ctx: TriageContext): InstanceTriage {
  const { rules, endpointRules } = ctx
  const raw = compareDocs(read.first, read.shadow, endpointRules, rules)
  const waived: Record<string, number> = {}
  const live: Difference[] = []
  for (const d of raw.differences) {
    const waiver = findWaiver(rules, ctx.endpoint, d.signature, d.class, ctx.nowMs)
    if (waiver === undefined) live.push(d)
    else waived[waiver.id] = (waived[waiver.id] ?? 0) + 1
  }

  const noise = new Map<string, number>()
  const explained: Difference[] = []
  const unexplained: Difference[] = []
  if (live.length > 0) {
    const againstSecond = compareDocs(read.second, read.shadow, endpointRules, rules)
    const stillDiffer = new Set(againstSecond.differences.map((d) => d.path))
    indexDoc(read.second)
    for (const d of live) {
      if (!stillDiffer.has(d.path)) {
        explained.push(d)
        continue
      }
      const rule = fieldRule(endpointRules, d.signature)
      if (d.class === 'value' && rule?.monotonic === true) {
        const after = valueAt(read.second, d)
        const asInstant = typeof d.primary === 'string'
        const rate =
          typeof after === 'number' && typeof d.primary === 'number' && read.gapMs > 0
            ? Math.abs(after - d.primary) / read.gapMs
            : 0
        const lead = rule.maxLead ?? (asInstant ? ctx.lagMs : rate * ctx.lagMs)
        if (between(d.primary, d.shadow, after, lead, asInstant)) {
          explained.push(d)
          continue
        }
      }
      unexplained.push(d)
    }
    const drift = compareDocs(read.first, read.second, endpointRules, rules)
    for (const d of drift.differences) noise.set(d.signature, (noise.get(d.signature) ?? 0) + 1)
  }
  return {
    url: read.url,
    unexplained,
    explained,
    waived,
    tolerated: raw.tolerated,
    noise,
    observations: read.first.observations,
    second: read.second,
  }
}

/** An endpoint's verdict over all its instances (one for `/live`, one per character for `/stats`). */
export interface EndpointTriage {
  differences: TriagedDifference[]
  explained: number
  tolerated: number
  waived: Record<string, number>
  /** Per signature: unexplained differences, noise (changes between primary reads), observations. */
  signatures: Record<string, { unexplained: number; noise: number; observations: number }>
}

/**
 * Diffy's rule with time standing in for a second primary: an unexplained difference is a
 * mismatch only when its signature's mismatch rate exceeds its noise rate; otherwise it is noise.
 */
export function settleEndpoint(instances: readonly InstanceTriage[], rules: CompareRules): EndpointTriage {
  const signatures: EndpointTriage['signatures'] = {}
  const stat = (sig: string) => {
    let s = signatures[sig]
    if (s === undefined) {
      s = { unexplained: 0, noise: 0, observations: 0 }
      signatures[sig] = s
    }
    return s
  }
  const waived: Record<string, number> = {}
  let explained = 0
  let tolerated = 0
  for (const inst of instances) {
    explained += inst.explained.length
    tolerated += inst.tolerated
    for (const [id, n] of Object.entries(inst.waived)) waived[id] = (waived[id] ?? 0) + n
    for (const d of inst.unexplained) stat(d.signature).unexplained += 1
    for (const [sig, n] of inst.noise) stat(sig).noise += n
  }
  for (const inst of instances) {
    for (const sig of Object.keys(signatures)) {
      const s = signatures[sig]!
      // A missing or extra node may be absent from the primary's first read; count it at least once.
      s.observations += inst.observations.get(sig) ?? 0
    }
  }
  for (const s of Object.values(signatures)) s.observations = Math.max(s.observations, s.unexplained, s.noise)

  const differences: TriagedDifference[] = []
  for (const inst of instances) {
    indexDoc(inst.second)
    for (const d of inst.unexplained) {
      const s = signatures[d.signature]!
      const triaged: TriagedDifference = {
        ...d,
        status: s.unexplained > s.noise ? 'mismatch' : 'noise',
        severity: rules.severity[d.class],
        url: inst.url,
      }
      const after = valueAt(inst.second, d)
      if (after !== undefined) triaged.primaryAfter = after
      differences.push(triaged)
    }
  }
  return { differences, explained, tolerated, waived, signatures }
}

/** Lag summary: how far the shadow's data trails the primary's. */
export interface LagStats {
  samples: number
  p50Ms: number | null
  p95Ms: number | null
  maxMs: number | null
}

/**
 * Measures the lag on the probe of `rules.lag` (by default each `/live` player's `timestamp`):
 * per entity in both documents, the primary's instant minus the shadow's, floored at zero.
 */
export function measureLag(
  first: NormalizedDoc,
  shadow: NormalizedDoc,
  entities: string,
  field: string,
): LagStats {
  const at = (doc: NormalizedDoc): unknown => pick(doc.value, entities)
  const p = at(first)
  const s = at(shadow)
  const samples: number[] = []
  if (typeof p === 'object' && p !== null && typeof s === 'object' && s !== null) {
    for (const [key, pe] of Object.entries(p)) {
      const se = (s as Record<string, unknown>)[key]
      const tp = parseInstant((pe as Record<string, unknown> | null)?.[field])
      const ts = parseInstant((se as Record<string, unknown> | null)?.[field])
      if (tp !== undefined && ts !== undefined) samples.push(Math.max(0, (tp - ts) / 1000))
    }
  }
  samples.sort((a, b) => a - b)
  if (samples.length === 0) return { samples: 0, p50Ms: null, p95Ms: null, maxMs: null }
  return {
    samples: samples.length,
    p50Ms: quantile(samples, 0.5)!,
    p95Ms: quantile(samples, 0.95)!,
    maxMs: samples[samples.length - 1]!,
  }
}
