import type { Logger } from 'pino'
import { request } from 'undici'
import { coerceError } from '../protocol/errors.ts'
import { bump, type IngestCounters } from './metrics.ts'

export interface InventoryForwarderOptions {
  /** Base URL of the inventory service; undefined = forwarding off (counted as suppressed). */
  baseUrl: string | undefined
  /**
   * Post for real (`INVENTORY_WRITES_ENABLED`); otherwise a configured service only gets what a
   * shadow would have sent counted as suppressed (CONTRACT.md §10: a URL alone is not consent).
   */
  enabled: boolean
  logger: Logger
  counters: IngestCounters
  maxInFlight?: number
  maxQueued?: number
}

/** Paths on the inventory service per frame kind (CONTRACT.md §7, chosen). */
const PATHS = { full: '/process-inventory', delta: '/inventory-delta' } as const

/**
 * Forwards inventory frames to the inventory service (CONTRACT.md §7): at most 8 in flight and a
 * bounded queue, so a burst never starves telemetry; overflow is dropped and counted, never awaited.
 */
export class InventoryForwarder {
  readonly #opts: Required<Omit<InventoryForwarderOptions, 'baseUrl'>> & { baseUrl: string | undefined }
  readonly #queue: { kind: keyof typeof PATHS; body: string }[] = []
  #inFlight = 0

  constructor(options: InventoryForwarderOptions) {
    this.#opts = {
      maxInFlight: 8,
      maxQueued: 1_000,
      ...options,
      logger: options.logger.child({ component: 'inventory' }),
    }
  }

  /** Queues one frame's raw text for forwarding. */
  forward(kind: keyof typeof PATHS, body: string): void {
    const { counters, baseUrl, maxQueued, enabled } = this.#opts
    if (baseUrl === undefined || !enabled) {
      bump(counters.suppressed, 'inventory_forward')
      return
    }
    if (this.#queue.length >= maxQueued) {
      counters.inventory_dropped += 1
      return
    }
    this.#queue.push({ kind, body })
    this.#pump()
  }

  #pump(): void {
    while (this.#inFlight < this.#opts.maxInFlight && this.#queue.length > 0) {
      const job = this.#queue.shift()!
      this.#inFlight += 1
      void this.#send(job).finally(() => {
        this.#inFlight -= 1
        this.#pump()
      })
    }
  }

  async #send(job: { kind: keyof typeof PATHS; body: string }): Promise<void> {
    const { counters, logger } = this.#opts
    try {
      const res = await request(new URL(PATHS[job.kind], this.#opts.baseUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: job.body,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      })
      await res.body.dump()
      if (res.statusCode >= 400) throw new Error(`inventory service answered ${res.statusCode}`)
      counters.inventory_forwarded += 1
    } catch (err) {
      counters.inventory_failed += 1
      logger.warn({ err: coerceError(err), kind: job.kind }, 'inventory forward failed')
    }
  }
}
