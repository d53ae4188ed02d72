import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { coerceError } from '../protocol/errors.ts'
import { applyBatch } from './apply-batch.ts'
import type { Db } from './pool.ts'
import { backoffMs, isTransientDbError } from './transient.ts'
import type { WriteOp } from './write-ops.ts'

const ignore = (): void => {}

export interface WriterOptions {
  db: Db
  logger: Logger
  /** Ops applied per transaction. */
  batchSize?: number
  /** How long a partial batch may wait for company before it is written. */
  lingerMs?: number
  /** Ops held while the database is slow or down; past this, new ops are dropped and counted. */
  maxPending?: number
}

export interface WriterStats {
  pending: number
  rowsPersisted: number
  batches: number
  retries: number
  dropped: number
  rejected: number
}

/**
 * Takes persistence off the frame path: ingest enqueues ops (never awaits), one loop writes
 * them in order, batched in transactions. A failed batch rolls back as a whole, so retrying it
 * after a transient failure loses nothing and doubles nothing; a batch refused for its content
 * is split to isolate the refused op, which is logged and counted, never silently lost.
 */
export class BatchWriter extends EventEmitter {
  readonly #db: Db
  readonly #log: Logger
  readonly #batchSize: number
  readonly #lingerMs: number
  readonly #maxPending: number
  #queue: WriteOp[] = []
  #head = 0
  #running = false
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #idleWaiters: (() => void)[] = []
  #lastOverflowLog = 0
  readonly stats: WriterStats = {
    pending: 0,
    rowsPersisted: 0,
    batches: 0,
    retries: 0,
    dropped: 0,
    rejected: 0,
  }

  constructor(options: WriterOptions) {
    super()
    this.#db = options.db
    this.#log = options.logger.child({ component: 'writer' })
    this.#batchSize = options.batchSize ?? 2_000
    this.#lingerMs = options.lingerMs ?? 10
    this.#maxPending = options.maxPending ?? 500_000
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
    this.stats.pending += 1
    this.#schedule()
    return true
  }

  /** Resolves once everything queued so far has been written (or dropped as refused). */
  flush(): Promise<void> {
    if (this.stats.pending === 0 && !this.#running) return Promise.resolve()
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      void this.#run()
    }
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  /** Stops accepting ops and writes what is queued. */
  async close(): Promise<void> {
    this.#closed = true
    await this.flush()
  }

  #schedule(): void {
    if (this.#running || this.#timer !== undefined) return
    if (this.stats.pending >= this.#batchSize) {
      void this.#run()
      return
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#run()
    }, this.#lingerMs)
  }

  async #run(): Promise<void> {
    if (this.#running) return
    this.#running = true
    let attempt = 0
    while (this.stats.pending > 0) {
      const batch = this.#queue.slice(this.#head, this.#head + this.#batchSize)
      try {
        await this.#write(batch)
        attempt = 0
        this.#consume(batch.length)
      } catch (raw) {
        const err = coerceError(raw)
        if (isTransientDbError(err)) {
          this.stats.retries += 1
          const delay = backoffMs(attempt++)
          this.#log.warn(
            { err, attempt, delayMs: Math.round(delay), pending: this.stats.pending },
            'batch failed, retrying',
          )
          await new Promise((r) => setTimeout(r, delay))
        } else {
          await this.#isolate(batch, err)
          this.#consume(batch.length)
        }
      }
    }
    this.#running = false
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }

  #consume(n: number): void {
    this.#head += n
    this.stats.pending -= n
    // Compact now and then rather than shifting per batch.
    if (this.#head > 50_000 || this.#head === this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }

  async #write(batch: readonly WriteOp[]): Promise<void> {
    const client = await this.#db.connect()
    // A checked-out client whose server goes away emits 'error' between queries; unheard, that
    // would crash the process. The failing query rejects too, which is what drives the retry.
    client.on('error', ignore)
    let broken = false
    try {
      await client.query('BEGIN')
      const rows = await applyBatch(client, batch)
      await client.query('COMMIT')
      this.stats.rowsPersisted += rows
      this.stats.batches += 1
      this.emit('persisted', batch)
    } catch (err) {
      broken = isTransientDbError(err)
      if (!broken) await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.off('error', ignore)
      client.release(broken)
    }
  }

  /** A batch refused for its content: apply its ops one by one so only the bad ones are lost. */
  async #isolate(batch: readonly WriteOp[], cause: Error): Promise<void> {
    this.#log.warn({ err: cause, size: batch.length }, 'batch refused, isolating the refused ops')
    for (const op of batch) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#write([op])
          break
        } catch (raw) {
          const err = coerceError(raw)
          if (isTransientDbError(err)) {
            this.stats.retries += 1
            await new Promise((r) => setTimeout(r, backoffMs(attempt)))
            continue
          }
          this.stats.rejected += 1
          this.#log.error({ err, op: { kind: op.kind } }, 'write op refused by the database, dropped')
          break
        }
      }
    }
  }
}
