import type { Logger } from 'pino'
import { livePlayers } from '../db/read-telemetry.ts'
import type { Db } from '../db/pool.ts'
import { coerceError } from '../protocol/errors.ts'
import { type Clock, msToMicros } from '../protocol/time.ts'

export interface LiveCacheOptions {
  db: Db
  clock: Clock
  logger: Logger
  activeWindowMs: number
  refreshMs: number
}

/**
 * The `/live` body, refreshed by a background loop and served as pre-serialized JSON, so a
 * request never queries the database (CONTRACT.md §4). A failed refresh keeps the last body.
 */
export class LiveCache {
  readonly #o: LiveCacheOptions
  #body = '{"players":[]}'
  /** Players in the last refresh. */
  playerCount = 0
  #timer: NodeJS.Timeout | undefined
  #refreshing: Promise<void> | undefined
  refreshedAt = 0
  failures = 0

  constructor(options: LiveCacheOptions) {
    this.#o = options
  }

  get body(): string {
    return this.#body
  }

  start(): void {
    this.#timer = setInterval(() => void this.refresh(), this.#o.refreshMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** Re-reads the window now; concurrent callers share one query. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#load().finally(() => {
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  async #load(): Promise<void> {
    const { db, clock, activeWindowMs, logger } = this.#o
    try {
      const now = clock.now()
      const players = await livePlayers(db, msToMicros(now - activeWindowMs))
      this.#body = JSON.stringify({ players })
      this.playerCount = players.length
      this.refreshedAt = now
    } catch (err) {
      this.failures += 1
      logger.warn(
        { component: 'live-cache', err: coerceError(err) },
        'live cache refresh failed, serving the last one',
      )
    }
  }
}
