import type { Logger } from 'pino'
import { coerceError } from '../protocol/errors.ts'
import { type Clock, formatInstant, msToMicros } from '../protocol/time.ts'
import type { Db } from './pool.ts'

export interface RetentionOptions {
  db: Db
  clock: Clock
  logger: Logger
  /** With TimescaleDB the hypertables' own policies do the telemetry and spawn deletes. */
  timescale: boolean
  intervalMs?: number
}

const HOUR = 3_600_000
const DAY = 24 * HOUR

/**
 * Periodic deletes: portals older than 1 hour always (CONTRACT.md §2); on plain PostgreSQL
 * also telemetry past 30 days and spawns past 7 days (§8).
 */
export class RetentionTask {
  readonly #o: RetentionOptions
  #timer: NodeJS.Timeout | undefined

  constructor(options: RetentionOptions) {
    this.#o = options
  }

  start(): void {
    this.#timer = setInterval(() => void this.run(), this.#o.intervalMs ?? 60_000)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** One pass; failures are logged and the next pass tries again. */
  async run(): Promise<void> {
    const { db, clock, logger, timescale } = this.#o
    const now = clock.now()
    const before = (ms: number) => formatInstant(msToMicros(now - ms))
    try {
      await db.query('DELETE FROM portals WHERE discovered_at < $1', [before(HOUR)])
      if (!timescale) {
        await db.query('DELETE FROM telemetry_events WHERE timestamp < $1', [before(30 * DAY)])
        await db.query('DELETE FROM spawn_events WHERE timestamp < $1', [before(7 * DAY)])
      }
    } catch (err) {
      logger.warn({ component: 'retention', err: coerceError(err) }, 'retention pass failed')
    }
  }
}
