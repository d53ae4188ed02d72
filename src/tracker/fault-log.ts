import type { Logger } from 'pino'
import { coerceError } from '../protocol/errors.ts'
import { bump } from './metrics.ts'

/** One log record per site per interval, however many faults happen in between. */
export const FAULT_LOG_INTERVAL_MS = 10_000

/**
 * Where callbacks that have no caller (socket events, timers, fan-out) report what they caught:
 * every fault is counted by site, and logged at most once per site per interval with the count
 * since the last record. A `message` handler that throws would otherwise end the process (ws).
 */
export class FaultLog {
  readonly #counts: Record<string, number>
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #last = new Map<string, { at: number; since: number }>()

  constructor(counts: Record<string, number>, logger: Logger, intervalMs = FAULT_LOG_INTERVAL_MS) {
    this.#counts = counts
    this.#log = logger.child({ component: 'faults' })
    this.#intervalMs = intervalMs
  }

  /** Counts one fault at `site` (a fixed name of ours, never client text) and maybe logs it. */
  record(site: string, raw: unknown, context?: Record<string, unknown>): void {
    bump(this.#counts, site)
    const now = Date.now()
    let entry = this.#last.get(site)
    if (entry === undefined) {
      entry = { at: Number.NEGATIVE_INFINITY, since: 0 }
      this.#last.set(site, entry)
    }
    entry.since += 1
    if (now - entry.at < this.#intervalMs) return
    this.#log.error({ site, err: coerceError(raw), faults: entry.since, context }, 'handler fault caught')
    entry.at = now
    entry.since = 0
  }

  /** Wraps a callback so whatever it throws is recorded under `site` instead of escaping. */
  guard<A extends unknown[]>(site: string, fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args)
      } catch (err) {
        this.record(site, err)
      }
    }
  }
}
