import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { coerceError } from '../protocol/errors.ts'
import { LogThrottle } from '../protocol/log-throttle.ts'
import { applyBatch } from './apply-batch.ts'
import type { Db } from './pool.ts'
import { isTransientDbError, retryTransient } from './transient.ts'
import type { WriteOp } from './write-ops.ts'

const ignore = (): void => {}

export interface WriterOptions {
  db: Db
  logger: Logger
  /** A name for logs. */
  lane?: string
  /** Ops applied per transaction. */
  batchSize?: number
  /** How long a partial batch may wait for company before it is written. */
  lingerMs?: number
  /** Ops held while the database is slow or down; past this, new ops are dropped and counted. */
  maxPending?: number
  /** Bulk-load telemetry with COPY (a real PostgreSQL); off for the embedded server. */
  useCopy?: boolean
  /**
   * Transactions in flight at once. Above 1, batches may commit in any order, so only use it
   * for ops whose effects commute (inserts and increments).
   */
  concurrency?: number
}

export interface WriterStats {
  pending: number
  rowsPersisted: number
  batches: number
  retries: number
  dropped: number
  rejected: number
  /** Refused ops by SQLSTATE (or error code), keyed safely: a null-prototype record. */
  rejectedByReason: Record<string, number>
}

/** The label a refused op is counted under: its SQLSTATE, else the error's code or name. */
function rejectReason(err: unknown): string {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && code !== '' ? code : 'unknown'
}

/**
 * Takes persistence off the frame path: ingest enqueues ops (never awaits) and workers write
 * them, batched in transactions. A failed batch rolls back as a whole, so retrying it after a
 * transient failure loses nothing and doubles nothing; a batch refused for its content is
 * split to isolate the refused op, which is logged and counted, never silently lost.
 */
export class BatchWriter extends EventEmitter {
  readonly #db: Db
  readonly #log: Logger
  readonly #batchSize: number
  readonly #lingerMs: number
  readonly #maxPending: number
  readonly #useCopy: boolean
  readonly #concurrency: number
  #queue: WriteOp[] = []
  #head = 0
  #workers = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /** Ops accepted so far; an op's sequence number is its index in this count. */
  #enqueued = 0
  /** First sequence number of each batch being written. */
  readonly #inFlight = new Set<number>()
  /** flush() callers, each waiting for every op before `upTo` to be written. */
  #flushWaiters: { upTo: number; resolve: () => void }[] = []
  #lastOverflowLog = 0
  readonly stats: WriterStats = {
    pending: 0,
    rowsPersisted: 0,
    batches: 0,
    retries: 0,
    dropped: 0,
    rejected: 0,
    rejectedByReason: Object.create(null) as Record<string, number>,
  }
  /** One refusal record per reason per interval, however many ops are refused in between. */
  readonly #rejectLog = new LogThrottle()

  constructor(options: WriterOptions) {
    super()
    this.#db = options.db
    this.#log = options.logger.child({ component: 'writer', lane: options.lane ?? 'main' })
    this.#batchSize = options.batchSize ?? 5_000
    this.#lingerMs = options.lingerMs ?? 10
    this.#maxPending = options.maxPending ?? 500_000
    this.#useCopy = options.useCopy ?? true
    this.#concurrency = options.concurrency ?? 1
  }

  /** Queues one op; returns false (and counts it) when the bounded buffer is full. */
  enqueue(op: WriteOp): boolean {
    if (this.#closed) return false
    if (this.stats.pending >= this.#maxPending) {
      this.stats.dropped += 1
      const now = Date.now()
      if (now - this.#lastOverflowLog > 10_000) {
        this.#lastOverflowLog = now
        this.#log.error(
          { dropped: this.stats.dropped, pending: this.stats.pending },
          'write buffer full, dropping ops',
        )
      }
      return false
    }
    this.#queue.push(op)
    this.#enqueued += 1
    this.stats.pending += 1
    this.#schedule()
    return true
  }

  /**
   * Resolves once every op queued before the call has been written (or dropped as refused),
   * even while new ops keep arriving.
   */
  flush(): Promise<void> {
    const upTo = this.#enqueued
    if (this.#writtenBefore() >= upTo) return Promise.resolve()
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#spawn()
    }
    return new Promise((resolve) => this.#flushWaiters.push({ upTo, resolve }))
  }

  /** Every op with a sequence number below this has been written. */
  #writtenBefore(): number {
    let mark = this.#enqueued - this.#queued
    for (const first of this.#inFlight) mark = Math.min(mark, first)
    return mark
  }

  #settleWaiters(): void {
    if (this.#flushWaiters.length === 0) return
    const mark = this.#writtenBefore()
    const done = this.#flushWaiters.filter((w) => w.upTo <= mark)
    this.#flushWaiters = this.#flushWaiters.filter((w) => w.upTo > mark)
    for (const w of done) w.resolve()
  }

  /** Stops accepting ops and writes what is queued. */
  async close(): Promise<void> {
    this.#closed = true
    await this.flush()
  }

  get #queued(): number {
    return this.#queue.length - this.#head
  }

  #schedule(): void {
    if (this.#workers >= this.#concurrency || this.#timer !== undefined) return
    if (this.#queued >= this.#batchSize || this.#workers > 0) {
      this.#spawn()
      return
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#spawn()
    }, this.#lingerMs)
  }

  #spawn(): void {
    while (this.#workers < this.#concurrency && this.#queued > 0) {
      this.#workers += 1
      void this.#work()
    }
  }

  async #work(): Promise<void> {
    while (this.#queued > 0) {
      const first = this.#enqueued - this.#queued
      const batch = this.#take()
      this.#inFlight.add(first)
      await this.#writeRetrying(batch)
      this.#inFlight.delete(first)
      this.stats.pending -= batch.length
      this.#settleWaiters()
    }
    this.#workers -= 1
  }

  #take(): WriteOp[] {
    const batch = this.#queue.slice(this.#head, this.#head + this.#batchSize)
    this.#head += batch.length
    // Compact now and then rather than shifting per batch.
    if (this.#head > 50_000 || this.#head === this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    return batch
  }

  /**
   * Writes a batch, retrying transient failures until they pass. A batch the database refuses
   * for its content is halved until the refused ops stand alone, so only they are lost (and
   * counted by reason); every valid op of the batch is still written, in order.
   */
  async #writeRetrying(batch: readonly WriteOp[]): Promise<void> {
    try {
      await retryTransient(
        () => this.#write(batch),
        (err, attempt) => {
          this.stats.retries += 1
          this.#log.warn(
            { err, attempt, size: batch.length, pending: this.stats.pending },
            'batch failed, retrying',
          )
        },
        Number.POSITIVE_INFINITY,
      )
    } catch (raw) {
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2)
        await this.#writeRetrying(batch.slice(0, half))
        await this.#writeRetrying(batch.slice(half))
        return
      }
      this.#reject(batch[0]!, raw)
    }
  }

  #reject(op: WriteOp, raw: unknown): void {
    const reason = rejectReason(raw)
    this.stats.rejected += 1
    this.stats.rejectedByReason[reason] = (this.stats.rejectedByReason[reason] ?? 0) + 1
    const refused = this.#rejectLog.note(reason)
    if (refused === 0) return
    this.#log.error(
      { err: coerceError(raw), reason, op: { kind: op.kind }, refused },
      'write op refused by the database, dropped',
    )
  }

  async #write(batch: readonly WriteOp[]): Promise<void> {
    const client = await this.#db.connect()
    // A checked-out client whose server goes away emits 'error' between queries; unheard, that
    // would crash the process. The failing query rejects too, which is what drives the retry.
    client.on('error', ignore)
    let broken = false
    try {
      await client.query('BEGIN')
      const rows = await applyBatch(client, batch, this.#useCopy)
      await client.query('COMMIT')
      this.stats.rowsPersisted += rows
      this.stats.batches += 1
    } catch (err) {
      broken = isTransientDbError(err)
      // A client whose ROLLBACK fails is in no state to serve the next batch: replace it.
      if (!broken) await client.query('ROLLBACK').catch(() => (broken = true))
      throw err
    } finally {
      client.off('error', ignore)
      client.release(broken)
    }
  }
}
