import type { Logger } from 'pino'
import { coerceError } from '../protocol/errors.ts'
import { LOG_INTERVAL_MS, LogThrottle } from '../protocol/log-throttle.ts'
import { bump } from './metrics.ts'

/**
 * Where callbacks that have no caller (socket events, timers, fan-out) report what they caught:
 * every fault is counted by site, and logged at most once per site per interval with the count
 * since the last record. A `message` handler that throws would otherwise end the process (ws).
 */
export class FaultLog {
  readonly #counts: Record<string, number>
  readonly #log: Logger
  readonly #throttle: LogThrottle

  constructor(counts: Record<string, number>, logger: Logger, intervalMs = LOG_INTERVAL_MS) {
    this.#counts = counts
    this.#log = logger.child({ component: 'faults' })
    this.#throttle = new LogThrottle(intervalMs)
  }

  /** Counts one fault at `site` (a fixed name of ours, never client text) and maybe logs it. */
  record(site: string, raw: unknown, context?: Record<string, unknown>): void {
    bump(this.#counts, site)
    const faults = this.#throttle.note(site)
    if (faults > 0) this.#log.error({ site, err: coerceError(raw), faults, context }, 'handler fault caught')
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
