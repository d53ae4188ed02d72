import { createWriteStream, type WriteStream } from 'node:fs'
import { once } from 'node:events'
import { createGzip, type Gzip } from 'node:zlib'
import type { Logger } from 'pino'
import { OverlordError } from '../protocol/errors.ts'
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
 */
export class CaptureWriter {
  readonly stats: CaptureStats = { events: 0, frames: 0, snapshots: 0, dropped: 0, bytes: 0 }
  readonly redactor: Redactor
  readonly #o: CaptureWriterOptions
  readonly #file: WriteStream
  readonly #sink: Gzip | WriteStream
  #closed = false
  #error: Error | undefined
  readonly #opened: Promise<void>

  constructor(options: CaptureWriterOptions) {
    this.#o = options
    this.redactor = new Redactor(options.secrets)
    this.#file = createWriteStream(options.path)
    this.#opened = new Promise((resolve) => {
      this.#file.once('open', () => resolve())
      this.#file.once('error', () => resolve())
    })
    this.#file.on('error', (err) => {
      this.#error ??= err
      this.#closed = true
      options.logger.error({ err }, 'capture file error')
    })
    if (options.path.endsWith('.gz')) {
      const gzip = createGzip()
      gzip.pipe(this.#file)
      this.#sink = gzip
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

  snapshot(responses: Record<string, RecordedResponse>, t = this.#o.clock.now(), durationMs?: number): void {
    const event: CaptureEvent =
      durationMs === undefined
        ? { kind: 'snapshot', t, responses }
        : { kind: 'snapshot', t, duration_ms: durationMs, responses }
    if (this.#line(event, true)) this.stats.snapshots += 1
  }

  /** Resolves once the file is open; rejects if it cannot be written (call before relying on it). */
  async ready(): Promise<void> {
    await this.#opened
    this.#throwIfFailed()
  }

  /** Writes the end marker and waits until the file is complete; rejects if the file failed. */
  async finish(stats?: Record<string, unknown>): Promise<void> {
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
    if (!force && this.#sink.writableLength > (this.#o.maxPendingBytes ?? 8 * 1024 * 1024)) {
      this.stats.dropped += 1
      return false
    }
    const line = `${this.redactor.apply(JSON.stringify(value))}\n`
    this.#sink.write(line)
    this.stats.events += 1
    this.stats.bytes += line.length
    return true
  }
}
