/**
 * Counters the tracker exposes at `GET /metrics.json` (and as Prometheus text at `GET /metrics`), used by the harness for input accounting.
 * Every keyed record has a null prototype: keys come from clients (`constructor`, `__proto__`
 * and `toString` are valid frame types), so they must never meet `Object.prototype`.
 */
export interface IngestCounters {
  frames_received: number
  frames_accepted: number
  /** Frames refused at the edge (not JSON, wrong shape, unstorable field); by reason in `bad_by_reason`. */
  frames_bad: number
  frames_oversize: number
  bad_by_reason: Record<string, number>
  by_type: Record<string, number>
  unknown_types: number
  plugin_connections: number
  plugins_refused: number
  /** Side effects a shadow did not perform (CONTRACT.md §10), by kind. */
  suppressed: Record<string, number>
  inventory_forwarded: number
  inventory_dropped: number
  inventory_failed: number
  deaths_detected: number
  idles_detected: number
  /** Exceptions caught in socket handlers, timers and fan-out, by site (see FaultLog). */
  handler_errors: Record<string, number>
  /** `/ws/live` messages ignored (not JSON, a malformed subscribe, nothing we recognise), by reason. */
  browser_messages_ignored: Record<string, number>
}

/** A record safe to key with untrusted strings. */
export const counterRecord = (): Record<string, number> => Object.create(null) as Record<string, number>

export function newIngestCounters(): IngestCounters {
  return {
    frames_received: 0,
    frames_accepted: 0,
    frames_bad: 0,
    frames_oversize: 0,
    bad_by_reason: counterRecord(),
    by_type: counterRecord(),
    unknown_types: 0,
    plugin_connections: 0,
    plugins_refused: 0,
    suppressed: counterRecord(),
    inventory_forwarded: 0,
    inventory_dropped: 0,
    inventory_failed: 0,
    deaths_detected: 0,
    idles_detected: 0,
    handler_errors: counterRecord(),
    browser_messages_ignored: counterRecord(),
  }
}

/** Increments `record[key]` (a {@link counterRecord}). */
export function bump(record: Record<string, number>, key: string, by = 1): void {
  record[key] = (record[key] ?? 0) + by
}

/** Distinct keys a per-type counter keeps before folding the rest into `(other)`. */
export const MAX_COUNTED_TYPES = 256

/**
 * Like {@link bump} for keys chosen by clients (frame types): a plugin inventing types cannot
 * grow the record, and so `/metrics.json` and `/metrics`, without bound.
 */
export function bumpBounded(record: Record<string, number>, key: string): void {
  if (record[key] === undefined && Object.keys(record).length >= MAX_COUNTED_TYPES) key = '(other)'
  record[key] = (record[key] ?? 0) + 1
}
