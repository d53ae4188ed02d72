import { pick } from '../util/json-path.ts'
import { quantile } from '../util/quantile.ts'
import { instantMs, sameJson } from './equality.ts'
import type { NormalizedDoc } from './normalize.ts'
import type { EndpointRules, FrameRule } from './rules.ts'
import type { InstanceReads, TriageContext } from './triage.ts'

/**
 * Frame identity (issue 9 §1): pairing the two sides' entities by the plugin frame they were copied
 * from, the archive of frames every primary read showed, and the lag the unpaired ones measure.
 */

/** One measured lag: an entity (or document) whose two sides describe different frames. */
export interface LagSample {
  path: string
  /** Primary frame instant minus shadow frame instant: positive when the shadow is behind. */
  ms: number
  /** `earlier`: paired with an earlier primary read; `unpaired`: no primary read showed the shadow's frame. */
  kind: 'earlier' | 'unpaired'
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** A copy of `value` with the node at a dotted path replaced (copies only along the path). */
export function replaceAt(value: unknown, keys: readonly string[], node: unknown): unknown {
  if (keys.length === 0) return node
  const [head, ...rest] = keys as [string, ...string[]]
  const obj = isRecord(value) ? value : {}
  return { ...obj, [head]: replaceAt(obj[head], rest, node) }
}

const sameFrame = (a: unknown, b: unknown): boolean => a !== undefined && sameJson(a, b)

/** A frame's archive key: its character and its own instant in microseconds. */
export function frameKey(ent: Record<string, unknown>, field: string): string | undefined {
  const t = instantMs(ent[field])
  const who = ent.character_name
  return t === undefined || typeof who !== 'string' ? undefined : `${who}|${Math.round(t * 1000)}`
}

/**
 * The frames a primary document shows, for the archive: every entity (or object) under a `frames`
 * rule with an `archive` kind that names its character and instant.
 */
export function framesIn(
  doc: NormalizedDoc,
  endpointRules: EndpointRules | undefined,
): { kind: string; key: string; value: Record<string, unknown> }[] {
  const out: { kind: string; key: string; value: Record<string, unknown> }[] = []
  for (const [path, rule] of Object.entries(endpointRules?.frames ?? {})) {
    if (rule.archive === undefined) continue
    const node = pick(doc.value, path)
    if (!isRecord(node)) continue
    const items = doc.keyed.has(path) ? Object.values(node) : [node]
    for (const item of items) {
      if (!isRecord(item)) continue
      const key = frameKey(item, rule.field)
      if (key !== undefined) out.push({ kind: rule.archive, key, value: item })
    }
  }
  return out
}

export interface Paired {
  primary: NormalizedDoc
  paired: number
  lag: LagSample[]
}

/**
 * Frame pairing (issue 9 §1): both trackers copy an entity's frame instant (the plugin's own
 * `timestamp`) from the same frame, so entities that carry the same instant describe the same
 * frame and must agree exactly; an entity the primary shows at another frame is compared with the
 * primary read (this sweep's second, or an earlier poll) that showed the shadow's frame. When no
 * primary read did, the two sides are at different frames: the difference is lag, measured in the
 * frames' own seconds, and not compared (within `rules.lag.maxMs`).
 */
export function pairFrames(
  reads: InstanceReads,
  ctx: TriageContext,
  primaryReads: readonly NormalizedDoc[],
): Paired {
  const frames = ctx.endpointRules?.frames
  let value = reads.first.value
  let primary = reads.first
  let paired = 0
  const lag: LagSample[] = []
  if (frames === undefined) return { primary, paired, lag }
  const maxMs = ctx.rules.lag.maxMs
  const archived = (rule: FrameRule, ent: Record<string, unknown>): Record<string, unknown> | undefined => {
    if (rule.archive === undefined || reads.frame === undefined) return undefined
    const key = frameKey(ent, rule.field)
    const copy = key === undefined ? undefined : reads.frame(rule.archive, key)
    if (copy === undefined) return undefined
    // The fields both copies carry are compared; the rest (totals) stays the shadow's, uncompared here.
    const merged: Record<string, unknown> = { ...ent }
    for (const [k, v] of Object.entries(copy)) if (Object.hasOwn(ent, k)) merged[k] = v
    return merged
  }
  for (const [path, rule] of Object.entries(frames)) {
    const field = rule.field
    const keys = path.split('.')
    const sNode = pick(reads.shadow.value, path)
    const pNode = pick(value, path)
    if (!isRecord(sNode) || !isRecord(pNode)) continue
    if (reads.first.keyed.has(path)) {
      // A keyed array: pair entity by entity.
      let replaced: Record<string, unknown> | undefined
      for (const [key, sEnt] of Object.entries(sNode)) {
        const pEnt = pNode[key]
        if (!isRecord(sEnt) || !isRecord(pEnt)) continue
        const sFrame = sEnt[field]
        // An entity without a readable frame instant cannot be paired: compared as it is.
        if (instantMs(sFrame) === undefined || instantMs(pEnt[field]) === undefined) continue
        if (sameFrame(pEnt[field], sFrame)) {
          paired += 1
          continue
        }
        const delta = (instantMs(pEnt[field]) ?? 0) - (instantMs(sFrame) ?? 0)
        const match = primaryReads
          .map((doc) => pick(doc.value, path))
          .map((coll) => (isRecord(coll) ? coll[key] : undefined))
          .find((ent) => isRecord(ent) && sameFrame(ent[field], sFrame))
        const copy = match === undefined ? archived(rule, sEnt) : undefined
        if (match !== undefined || copy !== undefined) {
          replaced ??= { ...pNode }
          replaced[key] = match ?? copy
          paired += 1
          lag.push({ path: `${path}[${key}]`, ms: delta, kind: 'earlier' })
        } else if (Math.abs(delta) <= maxMs) {
          // Not comparable: the two sides show different frames of this entity.
          replaced ??= { ...pNode }
          replaced[key] = sEnt
          lag.push({ path: `${path}[${key}]`, ms: delta, kind: 'unpaired' })
        }
      }
      if (replaced !== undefined) value = replaceAt(value, keys, replaced)
    } else {
      // An object naming one frame: the whole document describes the state after that frame.
      const sFrame = sNode[field]
      if (instantMs(sFrame) === undefined || instantMs(pNode[field]) === undefined) continue
      if (sameFrame(pNode[field], sFrame)) {
        paired += 1
        continue
      }
      const delta = (instantMs(pNode[field]) ?? 0) - (instantMs(sFrame) ?? 0)
      const match = primaryReads.find((doc) => {
        const node = pick(doc.value, path)
        return isRecord(node) && sameFrame(node[field], sFrame)
      })
      const copy = match === undefined ? archived(rule, sNode) : undefined
      if (match !== undefined) {
        value = match.value
        primary = match
        paired += 1
        lag.push({ path, ms: delta, kind: 'earlier' })
      } else if (copy !== undefined) {
        value = replaceAt(value, keys, copy)
        paired += 1
        lag.push({ path, ms: delta, kind: 'earlier' })
      } else if (Math.abs(delta) <= maxMs) {
        value = replaceAt(value, keys, sNode)
        lag.push({ path, ms: delta, kind: 'unpaired' })
      }
    }
  }
  return {
    primary: value === primary.value ? primary : { ...primary, value },
    paired,
    lag,
  }
}

/** Lag of one sweep (issue 9 §1): how far the shadow's frames trail the primary's, never a mismatch. */
export interface LagStats {
  /** Entities (or documents) compared at the same frame. */
  paired: number
  /** Entities whose shadow frame is older than the primary's, and newer. */
  behind: number
  ahead: number
  /** Of those, how many no primary read could be paired with (not compared this sweep). */
  unpaired: number
  /** Seconds the shadow trails, over entities behind (the primary's frame instant minus the shadow's). */
  p50Ms: number | null
  p95Ms: number | null
  maxMs: number | null
  /** Most the shadow ran ahead (the primary's cache or writes older). */
  aheadMaxMs: number | null
}

/** Sums lag samples into the sweep's {@link LagStats}. */
export function lagStats(samples: readonly LagSample[], paired: number): LagStats {
  const behind = samples
    .filter((s) => s.ms > 0)
    .map((s) => s.ms)
    .sort((a, b) => a - b)
  const ahead = samples.filter((s) => s.ms < 0).map((s) => -s.ms)
  return {
    paired,
    behind: behind.length,
    ahead: ahead.length,
    unpaired: samples.filter((s) => s.kind === 'unpaired').length,
    p50Ms: quantile(behind, 0.5) ?? null,
    p95Ms: quantile(behind, 0.95) ?? null,
    maxMs: behind.at(-1) ?? null,
    aheadMaxMs: ahead.length === 0 ? null : Math.max(...ahead),
  }
}
