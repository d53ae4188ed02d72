import { summarize } from '../../util/quantile.ts'
import type { EndpointReport } from '../sweep.ts'
import type { DiffClass, Difference, TriagedDifference } from '../types.ts'
import { DIFF_CLASSES } from '../types.ts'
import { diffJson, triaged } from './identity.ts'
import type { ProbeSpec } from './probes.ts'
import type { ProbeResult, Side } from './types.ts'

/** The report of one window (pure): the differences summed up as an endpoint's, and the probes'. */

/**
 * The window as an {@link EndpointReport} named `ws-live`: mismatches by class, clusters by
 * signature, and examples, one per mismatch cluster first.
 */
export function endpointReport(
  differences: readonly TriagedDifference[],
  observations: ReadonlyMap<string, number>,
  o: {
    errors: number
    instances: number
    paired: number
    delaysMs: readonly number[]
    unpaired: number
    examples: number
  },
): EndpointReport {
  const mismatches = differences.filter((d) => d.status === 'mismatch')
  const explained = differences.filter((d) => d.status !== 'mismatch')
  const byClass = Object.fromEntries(DIFF_CLASSES.map((c) => [c, 0])) as Record<DiffClass, number>
  for (const d of mismatches) byClass[d.class] += 1
  const clusters = new Map<string, EndpointReport['clusters'][number]>()
  const firstOf: TriagedDifference[] = []
  for (const d of differences) {
    const key = `${d.status}\u0000${d.class}\u0000${d.signature}`
    const c = clusters.get(key)
    if (c !== undefined) c.count += 1
    else {
      clusters.set(key, { signature: d.signature, class: d.class, status: d.status, count: 1, rate: 0 })
      if (d.status === 'mismatch') firstOf.push(d)
    }
  }
  for (const c of clusters.values())
    c.rate = c.count / Math.max(c.count, observations.get(c.signature) ?? c.count)
  // One example per mismatch cluster first, so a flood of one kind does not hide the others.
  const shown = new Set(firstOf)
  const examples = [...firstOf, ...mismatches.filter((d) => !shown.has(d)), ...explained].slice(0, o.examples)
  const behind = summarize(o.delaysMs.filter((ms) => ms > 0))
  const ahead = o.delaysMs.filter((ms) => ms < 0)
  return {
    name: 'ws-live',
    instances: o.instances,
    clean: mismatches.length === 0 && o.errors === 0,
    mismatches: mismatches.length,
    hard: mismatches.length,
    noise: 0,
    explained: explained.length,
    tolerated: 0,
    errors: o.errors,
    paired: o.paired,
    lag: {
      paired: o.paired,
      behind: behind.samples,
      ahead: ahead.length,
      unpaired: o.unpaired,
      p50Ms: behind.p50,
      p95Ms: behind.p95,
      maxMs: behind.max,
      aheadMaxMs: ahead.length === 0 ? null : -ahead[0]!,
    },
    waived: {},
    byClass,
    clusters: [...clusters.values()].sort((a, b) => b.count - a.count),
    examples,
  }
}

/**
 * Each probe's answers side by side: a disagreement is a mismatch, and each answer is held against
 * the one the contract fixes. A side that could not be probed is an error entry, not a disagreement.
 */
export function probeResults(
  specs: readonly ProbeSpec[],
  answers: Record<Side, (Record<string, unknown> | null)[] | undefined>,
  differences: TriagedDifference[],
  observations: Map<string, number>,
): ProbeResult[] {
  return specs.map((spec, i) => {
    const p = answers.primary?.[i] ?? null
    const s = answers.shadow?.[i] ?? null
    const path = `probe.${spec.name}`
    const found: Difference[] = []
    // A side that could not be reached is an error entry, not a disagreement.
    if (answers.primary !== undefined && answers.shadow !== undefined) {
      observations.set(path, (observations.get(path) ?? 0) + 1)
      if (p !== null && s !== null) diffJson(p, s, path, path, found)
      else if (p !== null) {
        found.push({
          path,
          signature: path,
          class: 'missing_entity',
          primary: p,
          detail: 'the shadow did not answer',
        })
      } else if (s !== null) {
        found.push({
          path,
          signature: path,
          class: 'extra_entity',
          shadow: s,
          detail: 'the primary did not answer',
        })
      }
    }
    for (const d of found) differences.push(triaged(d, 'mismatch'))
    const asContract = (answer: Record<string, unknown> | null): boolean => {
      const out: Difference[] = []
      if (answer !== null) diffJson(spec.contract, answer, '', '', out)
      return answer !== null && out.length === 0
    }
    return {
      name: spec.name,
      request: spec.request,
      primary: p,
      shadow: s,
      agree: answers.primary !== undefined && answers.shadow !== undefined && found.length === 0,
      asContract: spec.contract === undefined ? null : { primary: asContract(p), shadow: asContract(s) },
    }
  })
}
