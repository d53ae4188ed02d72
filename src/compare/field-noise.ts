import { count, percent, plural } from './figures.ts'
import { LEDGER_CLUSTERS, type LedgerEntry } from './ledger.ts'

/**
 * How one field (an endpoint and a path signature) differed across a run of sweeps. A sweep decides
 * noise on its own (issue 4 §3); a field that is noise one sweep in a hundred only shows here.
 */
export interface FieldNoise {
  endpoint: string
  signature: string
  /** Sweeps that observed the endpoint: the denominator of the rates. */
  sweeps: number
  /** Sweeps in which the field appeared as noise, as explained, as a mismatch. */
  noise: number
  explained: number
  mismatch: number
  /** `noise / sweeps`. */
  noiseRate: number
  /** The largest share of the field's observations that were noise in one sweep; null when unrecorded. */
  peakNoiseShare: number | null
  firstNoise: string | null
  lastNoise: string | null
  /** Sweeps of the endpoint whose clusters were capped or went unrecorded: the counts are lower bounds. */
  incomplete: number
}

/** Accumulates the ledger's per-sweep clusters per endpoint and field, worst noise rate first. */
export function fieldNoise(entries: readonly LedgerEntry[]): FieldNoise[] {
  const swept = new Map<string, { sweeps: number; incomplete: number }>()
  // Keyed by endpoint then signature: both come from the backends' documents, so never a plain object.
  const fields = new Map<string, Map<string, FieldNoise>>()
  for (const e of entries) {
    for (const ep of e.endpoints) {
      const clusters = ep.clusters ?? []
      const s = swept.get(ep.name) ?? { sweeps: 0, incomplete: 0 }
      s.sweeps += 1
      // Lines older than `clustersDropped` may have been capped exactly when they hold a full list.
      const capped = ep.clustersDropped ?? (clusters.length >= LEDGER_CLUSTERS ? 1 : 0)
      if (ep.clusters === undefined || capped > 0) s.incomplete += 1
      swept.set(ep.name, s)
      let bySignature = fields.get(ep.name)
      if (bySignature === undefined) {
        bySignature = new Map()
        fields.set(ep.name, bySignature)
      }
      const seen = new Map<string, Set<string>>()
      for (const c of clusters) {
        let f = bySignature.get(c.signature)
        if (f === undefined) {
          f = {
            endpoint: ep.name,
            signature: c.signature,
            sweeps: 0,
            noise: 0,
            explained: 0,
            mismatch: 0,
            noiseRate: 0,
            peakNoiseShare: null,
            firstNoise: null,
            lastNoise: null,
            incomplete: 0,
          }
          bySignature.set(c.signature, f)
        }
        // One signature may cluster under several classes in a sweep; a sweep counts once per status.
        const statuses = seen.get(c.signature) ?? new Set<string>()
        seen.set(c.signature, statuses)
        if (c.status === 'noise' && typeof c.rate === 'number') {
          f.peakNoiseShare = Math.max(f.peakNoiseShare ?? 0, c.rate)
        }
        if (statuses.has(c.status)) continue
        statuses.add(c.status)
        if (c.status === 'noise') {
          f.noise += 1
          f.firstNoise ??= e.id
          f.lastNoise = e.id
        } else if (c.status === 'explained') f.explained += 1
        else if (c.status === 'mismatch') f.mismatch += 1
      }
    }
  }
  const out: FieldNoise[] = []
  for (const [endpoint, bySignature] of fields) {
    const s = swept.get(endpoint)!
    for (const f of bySignature.values()) {
      f.sweeps = s.sweeps
      f.incomplete = s.incomplete
      f.noiseRate = f.noise / s.sweeps
      out.push(f)
    }
  }
  return out.sort(
    (a, b) =>
      b.noiseRate - a.noiseRate ||
      b.mismatch - a.mismatch ||
      b.explained - a.explained ||
      a.endpoint.localeCompare(b.endpoint) ||
      a.signature.localeCompare(b.signature),
  )
}

/** `live players[].kills: noise in 1 of 200 sweeps (0.5 %), explained in 0, mismatch in 0`. */
export function describeFieldNoise(f: FieldNoise): string {
  const lowerBound = f.incomplete > 0 ? ` (at least: ${plural(f.incomplete, 'ledger line')} capped)` : ''
  return `${f.endpoint} ${f.signature}: noise in ${count(f.noise)} of ${count(f.sweeps)} sweeps (${percent(f.noiseRate, 'up')}), explained in ${count(f.explained)}, mismatch in ${count(f.mismatch)}${lowerBound}`
}
