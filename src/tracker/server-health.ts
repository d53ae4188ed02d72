import type { Logger } from 'pino'
import { request } from 'undici'
import type { Db } from '../db/pool.ts'
import { isoRows } from '../db/read-telemetry.ts'
import { coerceError } from '../protocol/errors.ts'
import { type Clock, formatInstant, msToMicros } from '../protocol/time.ts'

export interface ServerHealthOptions {
  db: Db
  clock: Clock
  logger: Logger
  /** The URL to probe; none (the default) means the status stays "unknown". */
  url: string | undefined
  serverName: string
  /** Live players right now, for `player_count`. */
  playerCount: () => number
  intervalMs?: number
  /** Writes the result to `server_status`; false in read-only mode. */
  persist: boolean
}

export interface ServerHealth {
  server_name: string
  status: 'up' | 'down' | 'unknown'
  latency_ms: number | null
  /** Null until a probe has run (none configured = never), as the primary answers. */
  player_count: number | null
  last_check: string | null
}

/**
 * `/server-health` (CONTRACT.md §4, chosen shape): a periodic probe of a configurable URL,
 * kept as the single current row of `server_status`.
 */
export class ServerHealthCheck {
  readonly #o: ServerHealthOptions
  #timer: NodeJS.Timeout | undefined
  #current: ServerHealth

  constructor(options: ServerHealthOptions) {
    this.#o = options
    this.#current = {
      server_name: options.serverName,
      status: 'unknown',
      latency_ms: null,
      player_count: null,
      last_check: null,
    }
  }

  get current(): ServerHealth {
    // Without a probe URL the primary reports no player count (null), whatever is live; a row
    // recorded earlier (`load`) is served as it was recorded.
    if (this.#o.url === undefined) return { ...this.#current }
    return { ...this.#current, player_count: this.#o.playerCount() }
  }

  start(): void {
    if (this.#o.url === undefined) return
    void this.check()
    this.#timer = setInterval(() => void this.check(), this.#o.intervalMs ?? 60_000)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** Probes once and records the result. */
  async check(): Promise<void> {
    const { url, clock, logger, db } = this.#o
    if (url === undefined) return
    const started = performance.now()
    let status: ServerHealth['status'] = 'down'
    try {
      const res = await request(url, { method: 'GET', headersTimeout: 5_000, bodyTimeout: 5_000 })
      await res.body.dump()
      status = res.statusCode < 500 ? 'up' : 'down'
    } catch (err) {
      logger.debug({ component: 'server-health', err: coerceError(err) }, 'server health probe failed')
    }
    this.#current = {
      server_name: this.#o.serverName,
      status,
      latency_ms: status === 'up' ? Math.round((performance.now() - started) * 10) / 10 : null,
      player_count: this.#o.playerCount(),
      last_check: formatInstant(msToMicros(clock.now())),
    }
    if (!this.#o.persist) return
    const c = this.#current
    try {
      await db.query(
        `INSERT INTO server_status (id, server_name, status, latency_ms, player_count, last_check)
         VALUES (1, $1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET server_name = EXCLUDED.server_name, status = EXCLUDED.status,
           latency_ms = EXCLUDED.latency_ms, player_count = EXCLUDED.player_count, last_check = EXCLUDED.last_check`,
        [c.server_name, c.status, c.latency_ms, c.player_count, c.last_check],
      )
    } catch (err) {
      logger.warn({ component: 'server-health', err: coerceError(err) }, 'could not record server status')
    }
  }

  /** The last recorded status (e.g. the primary's, in read-only mode), when there is one. */
  async load(): Promise<void> {
    const { rows } = await this.#o.db.query<ServerHealth>(
      'SELECT server_name, status, latency_ms, player_count, last_check FROM server_status WHERE id = 1',
    )
    const row = isoRows(rows, ['last_check'])[0]
    if (row !== undefined) this.#current = row
  }
}
