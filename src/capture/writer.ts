import { createWriteStream, type WriteStream } from 'node:fs'
import { once } from 'node:events'
import { constants as zlibConstants, createGzip, type Gzip } from 'node:zlib'
import type { Logger } from 'pino'
import { coerceError, OverlordError } from '../protocol/errors.ts'
import { formatInstant, msToMicros, type Clock } from '../protocol/time.ts'
import {
  CAPTURE_FORMAT,
  CAPTURE_VERSION,
  type CaptureEvent,
  type CaptureHeader,
  type RecordedResponse,
} from './format.ts'
import { TEE_ERR_CAPTURE } from './format.ts'
import { Redactor, safeUrl } from './redact.ts'

export interface CaptureWriterOptions {
  /** Output file; a `.gz` suffix gzips it. */
  path: string
  source: string
  clock: Clock
  logger: Logger
  /** Secrets to keep out of the file (more can be added as the tee learns them). */
  secrets?: Iterable<string | undefined>
  primary?: string
  snapshotIntervalMs?: number
  meta?: Record<string, unknown>
  /** Past this many bytes not yet written to disk, events are dropped (never back-pressure the tee). */
  maxPendingBytes?: number
}

/** How often a gzipped capture checks whether its pending records are due on disk. */
const FLUSH_TICK_MS = 200

/** A capture-clock second: records written in one are flushed once the clock is in another. */
const secondOf = (ms: number): number => Math.floor(ms / 1000)

/** Counters of a capture. */
export interface CaptureStats {
  events: number
  frames: number
  snapshots: number
  dropped: number
  bytes: number
}

/**
 * Records a tee's stream to NDJSON (gzip optional). Recording is synchronous and bounded: when the disk
 * falls behind, events are dropped and counted rather than slowing the tee. Every line passes through
 * a {@link Redactor}; request headers and cookies are never recorded at all.
 *
 * A crash loses at most about a second: a plain file is written line by line as it comes, and gzip is
 * sync-flushed after the header, after every snapshot, and once the capture clock has left the second
 * in which the oldest unflushed record was written. Flushes follow the capture clock, not wall time, so
 * a recording on virtual time (the simulator's fixtures) still comes out the same byte for byte.
 */
export class CaptureWriter {
  readonly stats: CaptureStats = { events: 0, frames: 0, snapshots: 0, dropped: 0, bytes: 0 }
  readonly redactor: Redactor
  readonly #o: CaptureWriterOptions
  readonly #file: WriteStream
  readonly #sink: Gzip | WriteStream
  readonly #gzip: Gzip | undefined
  #closed = false
  #error: Error | undefined
  readonly #opened: Promise<void>
  /** Whether anything but the header was recorded (or dropped): a baseline must come before. */
  #started = false
  /** The capture-clock second of the oldest record gzip holds unflushed; undefined when none. */
  #pendingSecond: number | undefined
  readonly #flushTicker: NodeJS.Timeout | undefined

  constructor(options: CaptureWriterOptions) {
    this.#o = options
    this.redactor = new Redactor(options.secrets)
    this.#file = createWriteStream(options.path)
    this.#opened = new Promise((resolve) => {
      this.#file.once('open', () => resolve())
      this.#file.once('error', () => resolve())
    })
    this.#file.on('error', (err) => this.#fail(err, 'capture file error'))
    if (options.path.endsWith('.gz')) {
      const gzip = createGzip()
      gzip.on('error', (err) => this.#fail(err, 'capture gzip error'))
      gzip.pipe(this.#file)
      this.#sink = gzip
      this.#gzip = gzip
      this.#flushTicker = setInterval(() => this.#flushIfDue(), FLUSH_TICK_MS)
      this.#flushTicker.unref()
    } else {
      this.#sink = this.#file
    }
    const header: CaptureHeader = {
      kind: 'header',
      format: CAPTURE_FORMAT,
      version: CAPTURE_VERSION,
      source: options.source,
      started_at: formatInstant(msToMicros(options.clock.now())),
    }
    if (options.primary !== undefined) header.primary = safeUrl(options.primary)
    if (options.snapshotIntervalMs !== undefined) header.snapshot_interval_ms = options.snapshotIntervalMs
    if (options.meta !== undefined) header.meta = options.meta
    this.#line(header, true)
    this.#flush()
  }

  open(conn: string, t = this.#o.clock.now()): void {
    this.#event({ kind: 'open', t, conn })
  }

  frame(conn: string, data: string, t = this.#o.clock.now()): void {
    if (this.#event({ kind: 'frame', t, conn, data })) this.stats.frames += 1
  }

  close(conn: string, code: number, t = this.#o.clock.now()): void {
    this.#event({ kind: 'close', t, conn, code })
  }

  /** Records a snapshot of the primary's read endpoints and flushes it to disk. */
  snapshot(responses: Record<string, RecordedResponse>, t = this.#o.clock.now(), durationMs?: number): void {
    const event: CaptureEvent =
      durationMs === undefined
        ? { kind: 'snapshot', t, responses }
        : { kind: 'snapshot', t, duration_ms: durationMs, responses }
    if (this.#line(event, true)) this.stats.snapshots += 1
    this.#flush()
  }

  /**
   * Records what the primary held before the capture (format.ts: the baseline), and flushes it.
   * It must be the first event: a frame recorded before it would be history and stream at once.
   */
  baseline(responses: Record<string, RecordedResponse>, t: number, durationMs: number): void {
    if (this.#started) {
      throw new OverlordError(TEE_ERR_CAPTURE, 'a capture baseline must be recorded before any event')
    }
    this.#line({ kind: 'snapshot', baseline: true, t, duration_ms: durationMs, responses }, true)
    this.#flush()
  }

  /** Resolves once the file is open; rejects if it cannot be written (call before relying on it). */
  async ready(): Promise<void> {
    await this.#opened
    this.#throwIfFailed()
  }

  /** Writes the end marker and waits until the file is complete; rejects if the file failed. */
  async finish(stats?: Record<string, unknown>): Promise<void> {
    clearInterval(this.#flushTicker)
    if (!this.#closed) {
      this.#line({ kind: 'end', t: this.#o.clock.now(), ...(stats === undefined ? {} : { stats }) }, true)
      this.#closed = true
      this.#sink.end()
    }
    if (!this.#file.closed && this.#error === undefined) await once(this.#file, 'close')
    this.#throwIfFailed()
  }

  #throwIfFailed(): void {
    if (this.#error !== undefined) {
      throw new OverlordError(TEE_ERR_CAPTURE, `capture file ${this.#o.path} failed`, { cause: this.#error })
    }
  }

  #event(event: CaptureEvent): boolean {
    return this.#line(event, false)
  }

  #line(value: CaptureHeader | CaptureEvent, force: boolean): boolean {
    if (this.#closed) return false
    if (value.kind !== 'header') this.#started = true
    // Before the write, so a flush falls between seconds wherever the ticker or a record notices it.
    this.#flushIfDue()
    if (!force && this.#sink.writableLength > (this.#o.maxPendingBytes ?? 8 * 1024 * 1024)) {
      this.stats.dropped += 1
      return false
    }
    const line = `${this.redactor.apply(JSON.stringify(value))}\n`
    this.#sink.write(line)
    if (this.#gzip !== undefined) this.#pendingSecond ??= secondOf(this.#o.clock.now())
    this.stats.events += 1
    this.stats.bytes += line.length
    return true
  }

  #flushIfDue(): void {
    if (this.#pendingSecond !== undefined && secondOf(this.#o.clock.now()) !== this.#pendingSecond) {
      this.#flush()
    }
  }

  /** Pushes what gzip holds through to the file (a plain file's stream writes as it comes). */
  #flush(): void {
    if (this.#gzip === undefined || this.#closed || this.#pendingSecond === undefined) return
    this.#pendingSecond = undefined
    try {
      this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH)
    } catch (err) {
      this.#fail(coerceError(err), 'capture flush failed')
    }
  }

  #fail(err: Error, message: string): void {
    this.#error ??= err
    this.#closed = true
    clearInterval(this.#flushTicker)
    this.#o.logger.error({ err }, message)
  }
}
