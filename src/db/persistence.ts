import type { Logger } from 'pino'
import type { Db } from './pool.ts'
import { BatchWriter, type WriterStats } from './writer.ts'
import type { WriteOp } from './write-ops.ts'

/** Ops whose effects commute (inserts and increments): their batches may commit in any order. */
const COMMUTING = new Set<WriteOp['kind']>(['telemetry', 'kills', 'spawn', 'rare'])

export interface PersistenceOptions {
  db: Db
  logger: Logger
  useCopy: boolean
  batchSize?: number
  maxPending?: number
  /** Transactions in flight for the bulk lane. */
  bulkConcurrency?: number
}

/**
 * Two writer lanes: the bulk lane (telemetry, spawns, rares, kill increments) pipelines
 * several transactions, so the database works on one batch while the next is prepared; the
 * ordered lane (portals' first discovery, character_stats' latest, combat snapshots) keeps
 * one transaction in flight, in arrival order.
 */
export class Persistence {
  readonly #bulk: BatchWriter
  readonly #ordered: BatchWriter

  constructor(o: PersistenceOptions) {
    const common = {
      db: o.db,
      logger: o.logger,
      useCopy: o.useCopy,
      batchSize: o.batchSize,
      maxPending: o.maxPending,
    }
    this.#bulk = new BatchWriter({ ...common, lane: 'bulk', concurrency: o.bulkConcurrency ?? 2 })
    this.#ordered = new BatchWriter({ ...common, lane: 'ordered', concurrency: 1 })
  }

  /** Queues one op on its lane; false when that lane's bounded buffer is full (counted). */
  enqueue(op: WriteOp): boolean {
    return (COMMUTING.has(op.kind) ? this.#bulk : this.#ordered).enqueue(op)
  }

  /** Resolves once everything queued so far is written. */
  async flush(): Promise<void> {
    await Promise.all([this.#bulk.flush(), this.#ordered.flush()])
  }

  async close(): Promise<void> {
    await Promise.all([this.#bulk.close(), this.#ordered.close()])
  }

  /** Both lanes' counters, summed. */
  get stats(): WriterStats {
    const a = this.#bulk.stats
    const b = this.#ordered.stats
    return {
      pending: a.pending + b.pending,
      rowsPersisted: a.rowsPersisted + b.rowsPersisted,
      batches: a.batches + b.batches,
      retries: a.retries + b.retries,
      dropped: a.dropped + b.dropped,
      rejected: a.rejected + b.rejected,
      rejectedByReason: sumRecords(a.rejectedByReason, b.rejectedByReason),
    }
  }
}

function sumRecords(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = Object.create(null) as Record<string, number>
  for (const r of [a, b]) for (const k in r) out[k] = (out[k] ?? 0) + r[k]!
  return out
}
