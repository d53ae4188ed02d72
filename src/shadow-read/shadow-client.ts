import { Pool } from 'undici'
import type { ShadowErrorKind } from '../compare/ledger.ts'
import { coerceError } from '../protocol/errors.ts'
import type { RawAnswer } from './judge.ts'

export interface ShadowClientOptions {
  /** The shadow's base URL, e.g. `http://127.0.0.1:8766`. */
  url: string
  /** Requests to the shadow at once. */
  concurrency: number
  /** Requests waiting for a turn, at most; past it a mirror is dropped. */
  queue: number
  /** From the user's request to the shadow's last byte, queue wait included. */
  timeoutMs: number
  maxBodyBytes: number
  logger: LogSink
  now?: () => number
  /** Told each time the breaker pauses mirrors, with the instant (ms) the pause ends. */
  onPause?: (untilMs: number) => void
}

/** Where the client reports (a pino logger, or the mirror thread's relay to one). */
export interface LogSink {
  warn(fields: object, msg: string): void
  error(fields: object, msg: string): void
}

/** What the shadow answered, or why it did not. */
export type ShadowResult = { ok: true; answer: RawAnswer } | { ok: false; kind: ShadowErrorKind }

interface Job {
  path: string
  headers: Record<string, string>
  deadline: number
  done: (result: ShadowResult) => void
  /** The one request the open breaker lets through. */
  probe: boolean
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
])
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED'])

/** The kind a failed shadow request is counted under. */
export function errorKind(err: Error): ShadowErrorKind {
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return 'timeout'
  const codes: unknown[] = [
    (err as { code?: unknown }).code,
    (err.cause as { code?: unknown } | undefined)?.code,
  ]
  // net's AggregateError (a refused connection tried over IPv4 and IPv6) carries the codes inside.
  const inner = (err as { errors?: unknown }).errors
  if (Array.isArray(inner)) for (const e of inner) codes.push((e as { code?: unknown } | null)?.code)
  if (codes.includes('ECONNREFUSED')) return 'refused'
  if (codes.some((c) => typeof c === 'string' && TIMEOUT_CODES.has(c))) return 'timeout'
  if (codes.some((c) => typeof c === 'string' && RESET_CODES.has(c))) return 'reset'
  return 'error'
}

/** What became of an offered mirror. */
export type Offer = 'sent' | 'queued' | 'dropped' | 'unavailable'

/** Consecutive failures (refused, reset, timed out) after which mirrors pause. */
export const BREAKER_FAILURES = 10
/** How long mirrors pause before one probe request tries the shadow again. */
export const BREAKER_PAUSE_MS = 1_000

/**
 * The mirror's side of the shadow (CONTRACT.md §10): GETs sent in the background through a bounded
 * queue and a fixed number of connections. Nothing here can reach the user: a full queue drops the
 * mirror (the caller counts it), and a slow, dead or refusing shadow only ends in a counted
 * {@link ShadowResult}. A request whose deadline passes while it waits is not sent at all.
 *
 * A circuit breaker keeps a dead shadow from costing anything: after {@link BREAKER_FAILURES}
 * failures in a row, mirrors are refused at once (`unavailable`, counted by the caller, no
 * connection tried, no answer copied) for {@link BREAKER_PAUSE_MS}; then one probe goes through,
 * and its success resumes mirroring.
 */
export class ShadowClient {
  readonly #o: ShadowClientOptions
  readonly #pool: Pool
  readonly #basePath: string
  readonly #waiting: Job[] = []
  readonly #now: () => number
  #running = 0
  #closed = false
  #failures = 0
  #pausedUntil = 0
  #probing = false

  constructor(options: ShadowClientOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
    const url = new URL(options.url)
    this.#basePath = url.pathname.replace(/\/$/, '')
    this.#pool = new Pool(url.origin, {
      connections: options.concurrency,
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    })
    // A shadow that resets connections must not surface as an unhandled error here.
    this.#pool.on('connectionError', () => {})
  }

  /** Mirrors waiting for a connection, and under way. */
  get pending(): number {
    return this.#waiting.length + this.#running
  }

  /**
   * Sends (or queues) one GET; `done` is called once with its result unless the mirror was
   * `dropped` (queue full) or `unavailable` (the breaker is open): then nothing was sent.
   */
  offer(path: string, headers: Record<string, string>, done: (result: ShadowResult) => void): Offer {
    if (this.#closed) return 'dropped'
    const now = this.#now()
    let probe = false
    if (this.#failures >= BREAKER_FAILURES) {
      if (now < this.#pausedUntil || this.#probing) return 'unavailable'
      probe = true
      this.#probing = true
    }
    const job: Job = { path, headers, deadline: now + this.#o.timeoutMs, done, probe }
    if (probe || this.#running < this.#o.concurrency) {
      this.#run(job)
      return 'sent'
    }
    if (this.#waiting.length >= this.#o.queue) return 'dropped'
    this.#waiting.push(job)
    return 'queued'
  }

  /** Counts a result towards the breaker. */
  #note(job: Job, result: ShadowResult): ShadowResult {
    if (job.probe) this.#probing = false
    if (result.ok || result.kind === 'too-large') this.#failures = 0
    else {
      this.#failures += 1
      if (this.#failures === BREAKER_FAILURES || job.probe) {
        this.#pausedUntil = this.#now() + BREAKER_PAUSE_MS
        this.#o.onPause?.(this.#pausedUntil)
        if (!job.probe) {
          this.#o.logger.warn(
            { failures: this.#failures, last: result.kind, pauseMs: BREAKER_PAUSE_MS },
            'shadow failing: mirrors paused, one probe per pause',
          )
        }
      }
    }
    return result
  }

  #run(job: Job): void {
    this.#running += 1
    void this.#send(job)
      .catch((err: unknown): ShadowResult => ({ ok: false, kind: errorKind(coerceError(err)) }))
      .then((result) => job.done(this.#note(job, result)))
      .catch((err: unknown) => this.#o.logger.error({ err }, 'mirror callback failed'))
      .finally(() => {
        this.#running -= 1
        const next = this.#waiting.shift()
        if (next !== undefined) this.#run(next)
      })
  }

  async #send(job: Job): Promise<ShadowResult> {
    const at = this.#now()
    const remaining = job.deadline - at
    if (remaining <= 0) return { ok: false, kind: 'timeout' }
    const res = await this.#pool.request({
      method: 'GET',
      path: `${this.#basePath}${job.path}`,
      headers: job.headers,
      signal: AbortSignal.timeout(remaining),
    })
    const declared = Number(res.headers['content-length'])
    if (declared > this.#o.maxBodyBytes) {
      res.body.destroy()
      return { ok: false, kind: 'too-large' }
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > this.#o.maxBodyBytes) {
        res.body.destroy()
        return { ok: false, kind: 'too-large' }
      }
      chunks.push(chunk)
    }
    const header = (name: string) => {
      const v = res.headers[name]
      return Array.isArray(v) ? v[0] : v
    }
    return {
      ok: true,
      answer: {
        status: res.statusCode,
        contentType: header('content-type'),
        contentEncoding: header('content-encoding'),
        body: concat(chunks, size),
        at,
        endedAt: this.#now(),
      },
    }
  }

  /** Drops what waits (each counted as a timeout) and closes the connections. */
  async close(): Promise<void> {
    this.#closed = true
    for (const job of this.#waiting.splice(0)) job.done({ ok: false, kind: 'timeout' })
    await this.#pool.destroy().catch(() => {})
  }
}

/** Chunks into one buffer that owns its memory (so it can move to the judge's thread). */
export function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(size))
  let offset = 0
  for (const c of chunks) {
    out.set(c, offset)
    offset += c.length
  }
  return out
}
