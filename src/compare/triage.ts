import { compareDocs } from './diff.ts'
import { instantMs, sameJson } from './equality.ts'
import { isRecord, type LagSample, pairFrames } from './frames.ts'
import type { NormalizedDoc } from './normalize.ts'
import type { CompareRules, EndpointRules } from './rules.ts'
import { fieldRule, findWaiver } from './rules.ts'
import type { Difference, TriagedDifference } from './types.ts'

/** A read kept for later comparisons: when it started and what it said. */
export interface TimedDoc {
  at: number
  doc: NormalizedDoc
}

/**
 * The reads of one endpoint instance: primary, shadow, primary again (old(t), new, old(t+Δ)), and
 * the earlier reads of the same URL on both sides (the last few polls, oldest first).
 */
export interface InstanceReads {
  url: string
  first: NormalizedDoc
  shadow: NormalizedDoc
  second: NormalizedDoc
  /** Milliseconds between the starts of the two primary reads. */
  gapMs: number
  /** When the shadow read started (ms): history older than `rules.lag.maxMs` before it is not used. */
  at?: number
  history?: { primary: readonly TimedDoc[]; shadow: readonly TimedDoc[] }
  /** A side's copy of a frame seen by any endpoint (`kind`, `character|instant`), see {@link framesIn}; the primary's by default. */
  frame?: (kind: string, key: string, side?: 'primary' | 'shadow') => Record<string, unknown> | undefined
  /** The newest frame instant (µs) a side showed for a character on any endpoint of the kind. */
  newestFrame?: (kind: string, character: string, side: 'primary' | 'shadow') => number | undefined
}

/** One instance after waivers, frame pairing and lag; `unexplained` awaits the endpoint-wide noise decision. */
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
  /** Entities (or documents) compared at the same frame. */
  paired: number
  lag: LagSample[]
}

export interface TriageContext {
  endpoint: string
  rules: CompareRules
  endpointRules: EndpointRules | undefined
  nowMs: number
  /** The lag lead allowances may assume (measured, else `rules.lag.assumedMs`). */
  lagMs: number
  /** Whether this sweep measured the shadow behind (frames on the character endpoint). */
  behind?: boolean
}

// Paths are resolved through an index built once per document (1 000 players → one walk, not 1 000).
const lookup = new WeakMap<NormalizedDoc, Map<string, unknown>>()

function indexOf(doc: NormalizedDoc): Map<string, unknown> {
  let index = lookup.get(doc)
  if (index !== undefined) return index
  const built = new Map<string, unknown>()
  const walk = (node: unknown, sig: string, path: string): void => {
    built.set(path, node)
    if (typeof node !== 'object' || node === null) return
    const collection = Array.isArray(node) || doc.keyed.has(sig)
    for (const [k, v] of Object.entries(node)) {
      const childSig = collection ? `${sig}[]` : sig === '' ? k : `${sig}.${k}`
      const childPath = collection ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`
      walk(v, childSig, childPath)
    }
  }
  walk(doc.value, '', '')
  lookup.set(doc, built)
  index = built
  return index
}

/** The value at a concrete path of a normalized document, following the diff's path syntax. */
export function valueAt(doc: NormalizedDoc, at: { path: string }): unknown {
  return indexOf(doc).get(at.path)
}

function between(values: readonly unknown[], shadow: unknown, behind: number, ahead: number): boolean {
  const conv = (v: unknown): number | undefined => (typeof v === 'number' ? v : instantMs(v))
  const s = conv(shadow)
  const nums = values.map(conv).filter((v): v is number => v !== undefined)
  if (s === undefined || nums.length === 0) return false
  return s >= Math.min(...nums) - behind && s <= Math.max(...nums) + ahead
}

/** The parent collection's concrete path and signature of an entity difference. */
function parentOf(d: Difference): { path: string; signature: string; key: string } | undefined {
  const m = /^(.*)\[([^\]]*)\]$/.exec(d.path)
  if (m === null || !d.signature.endsWith('[]')) return undefined
  return { path: m[1]!, signature: d.signature.slice(0, -2), key: m[2]! }
}

/**
 * A row present on one side only of a time series (`/trails`): lag when it is newer than every row
 * of its group on the other side (the other side has not written it yet), the window's edge when it
 * is older than all of them (the other side's query ran later); a row in between is a real gap.
 */
function outsideSeries(
  d: Difference,
  other: NormalizedDoc,
  endpointRules: EndpointRules | undefined,
): boolean {
  const parent = parentOf(d)
  if (parent === undefined) return false
  const series = Object.entries(endpointRules?.series ?? {}).find(([p]) => p === parent.signature)?.[1]
  if (series === undefined) return false
  const row = (d.class === 'missing_entity' ? d.primary : d.shadow) as Record<string, unknown> | undefined
  const t = instantMs(row?.[series.time])
  if (t === undefined) return false
  const coll = valueAt(other, { path: parent.path })
  if (!isRecord(coll)) return false
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (const ent of Object.values(coll)) {
    if (!isRecord(ent) || !sameJson(ent[series.by], row?.[series.by])) continue
    const et = instantMs(ent[series.time])
    if (et === undefined) continue
    min = Math.min(min, et)
    max = Math.max(max, et)
  }
  // A group the other side has no row of at all is a whole missing character, not an edge.
  if (min === Number.POSITIVE_INFINITY) return false
  return t > max || t < min
}

/**
 * Triage of one instance (issue 4 §3, issue 9 §1): waivers first; then frames are paired; a
 * difference is explained as lag when the shadow shows a state the primary showed in this sweep's
 * second read or in a recent poll, a time-series row lies past the other side's ends, a monotonic
 * number or instant lies within the primary's recent range (with the lead the lag explains), or an
 * entity is new on the shadow since its previous read (its cache refreshed before the primary's).
 * What changed between the two primary reads is counted as noise per signature.
 */
export function triageInstance(reads: InstanceReads, ctx: TriageContext): InstanceTriage {
  const { rules, endpointRules } = ctx
  const horizon = (reads.at ?? ctx.nowMs) - rules.lag.maxMs
  const primaryHistory = (reads.history?.primary ?? []).filter((h) => h.at >= horizon).map((h) => h.doc)
  const shadowHistory = (reads.history?.shadow ?? []).filter((h) => h.at >= horizon).map((h) => h.doc)
  // Newest first: the sweep's second read, then earlier polls.
  const earlier = [reads.second, ...primaryHistory.toReversed()]
  const { primary, paired, lag } = pairFrames(reads, ctx, earlier)
  const oldest = (reads.history?.primary ?? []).find((h) => h.at >= horizon)
  const trail: Trail = {
    behind: ctx.behind === true || lag.some((l) => l.ms > 0),
    ahead: lag.some((l) => l.ms < 0),
    oldest:
      oldest === undefined ? undefined : { doc: oldest.doc, ageMs: (reads.at ?? ctx.nowMs) - oldest.at },
  }

  const raw = compareDocs(primary, reads.shadow, endpointRules, rules)
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
    const allPrimary = [reads.first, ...earlier]
    const previousShadow = shadowHistory.at(-1)
    for (const d of live) {
      if (explainedAsLag(d, reads, allPrimary, previousShadow, trail, ctx)) explained.push(d)
      else unexplained.push(d)
    }
    const drift = compareDocs(reads.first, reads.second, endpointRules, rules)
    for (const d of drift.differences) noise.set(d.signature, (noise.get(d.signature) ?? 0) + 1)
  }
  return {
    url: reads.url,
    unexplained,
    explained,
    waived,
    tolerated: raw.tolerated,
    noise,
    observations: reads.first.observations,
    second: reads.second,
    paired,
    lag,
  }
}

/** What is known of the shadow's lag for one instance. */
interface Trail {
  /** Measured behind (this instance's frames, or the sweep's character endpoint). */
  behind: boolean
  /** This document's frame is newer on the shadow than in any primary read (the primary's writes trail). */
  ahead: boolean
  /** The oldest primary read kept, to estimate how fast a counter moves. */
  oldest: { doc: NormalizedDoc; ageMs: number } | undefined
}

/**
 * An entity one side's cached view lacks while that side showed its very frame on another endpoint
 * (`/stats` read in the same sweep): the view's cache has not refreshed since, not a divergence.
 */
function seenElsewhere(
  d: Difference,
  reads: InstanceReads,
  endpointRules: EndpointRules | undefined,
): boolean {
  const parent = parentOf(d)
  const rule = parent === undefined ? undefined : endpointRules?.frames?.[parent.signature]
  if (rule?.archive === undefined || reads.newestFrame === undefined) return false
  const ent = d.class === 'extra_entity' ? d.shadow : d.primary
  if (!isRecord(ent) || typeof ent.character_name !== 'string') return false
  const t = instantMs(ent[rule.field])
  const other = reads.newestFrame(
    rule.archive,
    ent.character_name,
    d.class === 'extra_entity' ? 'primary' : 'shadow',
  )
  // The other side has this character at this frame or a newer one.
  return t !== undefined && other !== undefined && other >= Math.round(t * 1000)
}

function explainedAsLag(
  d: Difference,
  reads: InstanceReads,
  primaryReads: readonly NormalizedDoc[],
  previousShadow: NormalizedDoc | undefined,
  trail: Trail,
  ctx: TriageContext,
): boolean {
  const { endpointRules, rules } = ctx
  const shadowValue = valueAt(reads.shadow, d)
  if (d.class === 'missing_entity' || d.class === 'extra_entity') {
    if (outsideSeries(d, d.class === 'missing_entity' ? reads.shadow : reads.first, endpointRules))
      return true
    // The first read of this URL has no earlier poll to tell a fresh login from an omission: the
    // other side's own frames (its /stats in this sweep) tell it. From the next sweep on, the
    // earlier polls do, so an entity a side never lists is caught then.
    const firstRead = (reads.history?.primary.length ?? 0) === 0 && (reads.history?.shadow.length ?? 0) === 0
    if (firstRead && seenElsewhere(d, reads, endpointRules)) return true
    // The primary was in the shadow's state recently: an entity it had just added or dropped.
    const shadowHas = shadowValue !== undefined
    if (primaryReads.some((doc) => (valueAt(doc, d) !== undefined) === shadowHas)) return true
    // New on the shadow since its previous read: its cache refreshed before the primary's.
    if (
      d.class === 'extra_entity' &&
      previousShadow !== undefined &&
      valueAt(previousShadow, d) === undefined
    )
      return true
    return false
  }
  // Order is a property of the list, not of a value a read could have held earlier.
  if (d.class === 'order') return false
  if (d.class !== 'value') {
    // A field that appears or changes type: explained only if a recent primary read agrees.
    return primaryReads.slice(1).some((doc) => sameJson(valueAt(doc, d), shadowValue))
  }
  if (primaryReads.slice(1).some((doc) => sameJson(valueAt(doc, d), shadowValue))) return true
  const rule = fieldRule(endpointRules, d.signature)
  if (rule?.monotonic !== true) return false
  const values = primaryReads.map((doc) => valueAt(doc, d))
  const asInstant = typeof d.primary === 'string'
  const first = valueAt(reads.first, d)
  const after = valueAt(reads.second, d)
  const then = trail.oldest === undefined ? undefined : valueAt(trail.oldest.doc, d)
  // How fast the counter moves: over the kept polls when there are some, else between the two reads.
  const rate =
    typeof then === 'number' && typeof first === 'number' && trail.oldest!.ageMs > 0
      ? Math.abs(first - then) / trail.oldest!.ageMs
      : typeof after === 'number' && typeof first === 'number' && reads.gapMs > 0
        ? Math.abs(after - first) / reads.gapMs
        : 0
  const aheadMs = rule.apartMs ?? rules.lag.aheadMs
  // The shadow has processed a frame the primary has not written yet: its counters may lead by it.
  const ahead = trail.ahead
    ? Number.POSITIVE_INFINITY
    : (asInstant ? aheadMs : rate * aheadMs) + (rule.maxAhead ?? 0)
  if (trail.oldest === undefined && trail.behind) {
    // Measured behind and no earlier poll to say how far: any value up to the primary's is lag.
    // The next sweep, with history, bounds it from below.
    return between(values, shadowValue, Number.POSITIVE_INFINITY, ahead)
  }
  const behindMs = Math.max(ctx.lagMs, rule.apartMs ?? 0)
  const behind = (asInstant ? behindMs : rate * behindMs) + (rule.maxLead ?? 0)
  return between(values, shadowValue, behind, ahead)
}

/** An endpoint's verdict over all its instances (one for `/live`, one per character for `/stats`). */
export interface EndpointTriage {
  differences: TriagedDifference[]
  explained: number
  tolerated: number
  waived: Record<string, number>
  paired: number
  lag: LagSample[]
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
  let paired = 0
  const lag: LagSample[] = []
  for (const inst of instances) {
    explained += inst.explained.length
    tolerated += inst.tolerated
    paired += inst.paired
    lag.push(...inst.lag)
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
  return { differences, explained, tolerated, waived, paired, lag, signatures }
}
