import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { Agent, request } from 'undici'
import { coerceError } from '../protocol/errors.ts'
import { LogThrottle } from '../protocol/log-throttle.ts'
import {
  deathMessage,
  idleMessage,
  isHttpUrl,
  retryAfterMs,
  webhookBody,
  webhookTarget,
} from './alert-message.ts'
import type { FaultLog } from './fault-log.ts'
import type { Ingest } from './ingest.ts'
import type { DeathEvent, IdleEvent } from './live-state.ts'
import { bump, counterRecord } from './metrics.ts'

/** What an alert is about (CONTRACT.md §6). */
export type AlertKind = 'death' | 'idle'

/** Bounds of alert delivery; the defaults suit Discord, tests shorten them. */
export interface AlertTuning {
  /** Alerts waiting for a free slot; past this, new ones are dropped and counted. */
  maxQueued: number
  /** Posts in flight at once (a retry's backoff keeps its slot: Discord asks us to slow down). */
  maxInFlight: number
  /** Deadline of one attempt, connect to last body byte. */
  timeoutMs: number
  /** Attempts per alert, the first included. */
  maxAttempts: number
  /** Backoff before the first retry, doubled per retry, with jitter. */
  backoffMs: number
  /** Cap on a backoff, and on the wait a `Retry-After` asks for. */
  maxBackoffMs: number
  /** How long `close()` lets posts already on the wire finish before abandoning them. */
  closeGraceMs: number
}

export const DEFAULT_ALERT_TUNING: AlertTuning = {
  maxQueued: 256,
  maxInFlight: 2,
  timeoutMs: 5_000,
  maxAttempts: 5,
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  closeGraceMs: 2_000,
}

export interface AlertDeliveryOptions extends Partial<AlertTuning> {
  /** The Discord webhook (`DISCORD_ACLOG_WEBHOOK`); a secret: its path carries the token. */
  webhookUrl: string | undefined
  /** Post for real; otherwise alerts are only logged and counted as suppressed (CONTRACT.md §10). */
  enabled: boolean
  logger: Logger
  /** Where a fault in an event handler is recorded instead of breaking ingest. */
  faults?: FaultLog
  /** The tracker-wide suppressed side effects record, bumped under `discord_alert`. */
  suppressed?: Record<string, number>
}

type PerKind = Record<AlertKind, number>

/** Counters of alert delivery, under `alerts` in the tracker metrics (`/metrics.json`, `/metrics`). */
export interface AlertStats {
  /** True when alerts are really posted (a URL and the explicit enable). */
  delivering: boolean
  detected_by_kind: PerKind
  posted_by_kind: PerKind
  /** Not posted because delivery is off: what a shadow would have posted. */
  suppressed_by_kind: PerKind
  /** Attempted and given up: attempts exhausted, or a status not worth retrying. */
  failed_by_kind: PerKind
  /** Never delivered: the queue was full, or the tracker shut down first. */
  dropped_by_kind: PerKind
  retries: number
  /** Failed attempts by reason: `timeout`, `network`, `http_429`, `http_5xx`, `http_4xx`, `http_other`. */
  attempt_errors_by_reason: Record<string, number>
  queued: number
  in_flight: number
}

interface AlertJob {
  kind: AlertKind
  character: string
  content: string
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

const isTimeout = (err: Error): boolean =>
  err.name === 'TimeoutError' || TIMEOUT_CODES.has((err as { code?: string }).code ?? '')

const perKind = (): PerKind => ({ death: 0, idle: 0 })

/**
 * Delivers death and idle alerts (CONTRACT.md §6) to a Discord webhook without ever holding up
 * ingest: the event handlers only enqueue into a bounded queue; a couple of posts run at a time,
 * each under a deadline, retried with backoff when the failure is transient. Off unless a URL is
 * given and delivery is explicitly enabled: a shadow logs and counts what it would have posted (§10).
 */
export class AlertDelivery {
  readonly #o: AlertTuning
  readonly #url: string | undefined
  readonly #log: Logger
  readonly #faults: FaultLog | undefined
  readonly #suppressedRecord: Record<string, number> | undefined
  readonly #agent: Agent | undefined
  readonly #queue: AlertJob[] = []
  readonly #inFlight = new Set<Promise<void>>()
  /** Aborted when close starts: no backoff sleep survives it. */
  readonly #stopRetries = new AbortController()
  /** Aborted when the close grace ends: posts still on the wire are abandoned. */
  readonly #abandon = new AbortController()
  readonly #overflowLog = new LogThrottle()
  readonly #detach: (() => void)[] = []
  #closing: Promise<void> | undefined
  readonly #s = {
    detected_by_kind: perKind(),
    posted_by_kind: perKind(),
    suppressed_by_kind: perKind(),
    failed_by_kind: perKind(),
    dropped_by_kind: perKind(),
    retries: 0,
    attempt_errors_by_reason: counterRecord(),
  }

  constructor(options: AlertDeliveryOptions) {
    const { webhookUrl, enabled, logger, faults, suppressed, ...tuning } = options
    this.#o = { ...DEFAULT_ALERT_TUNING }
    for (const [key, value] of Object.entries(tuning) as [keyof AlertTuning, number | undefined][])
      if (value !== undefined) this.#o[key] = value
    this.#faults = faults
    this.#suppressedRecord = suppressed
    const target = webhookUrl === undefined ? undefined : webhookTarget(webhookUrl)
    this.#log = logger.child({ component: 'alerts', target })
    const usable = webhookUrl !== undefined && isHttpUrl(webhookUrl)
    if (enabled && usable) this.#url = webhookUrl
    // Never echo the URL itself: a mistyped one still carries the token.
    else if (enabled)
      this.#log.warn('alert delivery enabled without a usable http(s) webhook: alerts are only logged')
    else if (webhookUrl !== undefined && !usable) this.#log.warn('alert webhook is not an http(s) URL')
    if (this.#url !== undefined) {
      const t = this.#o.timeoutMs
      this.#agent = new Agent({
        connections: this.#o.maxInFlight,
        connect: { timeout: t },
        headersTimeout: t,
        bodyTimeout: t,
      })
    }
    this.#log.info({ delivering: this.#url !== undefined }, 'alert delivery configured')
  }

  /** Subscribes to the tracker's detections; the handlers only enqueue. */
  attach(ingest: Ingest): void {
    const onDeath = this.#guard('alert_death', (e: DeathEvent) =>
      this.notify('death', e.character_name, deathMessage(e)),
    )
    const onIdle = this.#guard('alert_idle', (e: IdleEvent) =>
      this.notify('idle', e.character_name, idleMessage(e)),
    )
    ingest.on('death', onDeath)
    ingest.on('idle', onIdle)
    this.#detach.push(
      () => ingest.off('death', onDeath),
      () => ingest.off('idle', onIdle),
    )
  }

  /** Counts one alert and queues it for posting (or logs it as suppressed); never waits. */
  notify(kind: AlertKind, character: string, content: string): void {
    const s = this.#s
    s.detected_by_kind[kind] += 1
    if (this.#url === undefined) {
      s.suppressed_by_kind[kind] += 1
      if (this.#suppressedRecord !== undefined) bump(this.#suppressedRecord, 'discord_alert')
      this.#log.info(
        { kind, character, alert: { content } },
        'alert not posted (delivery off): would have posted',
      )
      return
    }
    if (this.#closing !== undefined) {
      s.dropped_by_kind[kind] += 1
      return
    }
    if (this.#queue.length >= this.#o.maxQueued) {
      s.dropped_by_kind[kind] += 1
      const dropped = this.#overflowLog.note('overflow')
      if (dropped > 0)
        this.#log.warn({ dropped, maxQueued: this.#o.maxQueued }, 'alert queue full: alerts dropped')
      return
    }
    this.#queue.push({ kind, character, content })
    this.#pump()
  }

  /** A snapshot of the counters. */
  get stats(): AlertStats {
    const s = this.#s
    return {
      delivering: this.#url !== undefined,
      detected_by_kind: { ...s.detected_by_kind },
      posted_by_kind: { ...s.posted_by_kind },
      suppressed_by_kind: { ...s.suppressed_by_kind },
      failed_by_kind: { ...s.failed_by_kind },
      dropped_by_kind: { ...s.dropped_by_kind },
      retries: s.retries,
      attempt_errors_by_reason: { ...s.attempt_errors_by_reason },
      queued: this.#queue.length,
      in_flight: this.#inFlight.size,
    }
  }

  /**
   * Stops: queued alerts and pending retries are dropped (counted), posts on the wire get
   * `closeGraceMs` to finish and are then abandoned. Bounded whatever the webhook does.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    for (const detach of this.#detach.splice(0)) detach()
    for (const job of this.#queue.splice(0)) this.#s.dropped_by_kind[job.kind] += 1
    this.#stopRetries.abort()
    const pending = Promise.allSettled([...this.#inFlight])
    if (this.#inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#o.closeGraceMs)
      })
      await Promise.race([pending, grace])
      clearTimeout(timer)
    }
    this.#abandon.abort()
    await pending
    await this.#agent?.destroy()
  }

  #pump(): void {
    while (
      this.#closing === undefined &&
      this.#inFlight.size < this.#o.maxInFlight &&
      this.#queue.length > 0
    ) {
      const job = this.#queue.shift()!
      const delivery: Promise<void> = this.#deliver(job)
        .catch((err: unknown) => this.#faults?.record('alert_delivery', err))
        .finally(() => {
          this.#inFlight.delete(delivery)
          this.#pump()
        })
      this.#inFlight.add(delivery)
    }
  }

  async #deliver(job: AlertJob): Promise<void> {
    const s = this.#s
    const log = this.#log.child({ kind: job.kind, character: job.character })
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(job)
      if (outcome.ok) {
        s.posted_by_kind[job.kind] += 1
        log.info({ attempt }, 'alert posted')
        return
      }
      if (this.#abandon.signal.aborted) {
        s.dropped_by_kind[job.kind] += 1
        log.warn({ attempt }, 'alert abandoned at shutdown')
        return
      }
      bump(s.attempt_errors_by_reason, outcome.reason)
      if (!outcome.retryable || attempt >= this.#o.maxAttempts) {
        s.failed_by_kind[job.kind] += 1
        log.warn(
          { attempt, reason: outcome.reason, status: outcome.status, error: outcome.error },
          'alert not delivered: giving up',
        )
        return
      }
      const backoff = this.#o.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)
      const waitMs = Math.min(this.#o.maxBackoffMs, outcome.retryAfterMs ?? backoff)
      log.debug(
        { attempt, reason: outcome.reason, status: outcome.status, error: outcome.error, waitMs },
        'alert post failed, retrying',
      )
      try {
        await sleep(waitMs, undefined, { signal: this.#stopRetries.signal, ref: false })
      } catch {
        s.dropped_by_kind[job.kind] += 1
        log.warn({ attempt }, 'alert retry abandoned at shutdown')
        return
      }
      s.retries += 1
    }
  }

  async #attempt(job: AlertJob): Promise<Attempt> {
    const signal = AbortSignal.any([this.#abandon.signal, AbortSignal.timeout(this.#o.timeoutMs)])
    try {
      const res = await request(this.#url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: webhookBody(job.content),
        dispatcher: this.#agent,
        signal,
      })
      await res.body.dump({ limit: 64 * 1024, signal })
      const status = res.statusCode
      if (status >= 200 && status < 300) return { ok: true }
      if (status === 429 || status >= 500) {
        // Discord answers 429 with Retry-After; a 503 may carry one too (RFC 9110 §10.2.3).
        return {
          ok: false,
          retryable: true,
          reason: status === 429 ? 'http_429' : 'http_5xx',
          status,
          retryAfterMs: retryAfterMs(res.headers['retry-after']),
        }
      }
      return { ok: false, retryable: false, reason: status >= 400 ? 'http_4xx' : 'http_other', status }
    } catch (raw) {
      const err = coerceError(raw)
      // The code or name only: a message could quote the request, and the URL is a secret.
      const error = (err as { code?: string }).code ?? err.name
      return { ok: false, retryable: true, reason: isTimeout(err) ? 'timeout' : 'network', error }
    }
  }

  #guard<E>(site: string, fn: (e: E) => void): (e: E) => void {
    return (e: E) => {
      try {
        fn(e)
      } catch (err) {
        // An event listener that throws would abort the rest of ingest's frame handling.
        this.#faults?.record(site, err)
      }
    }
  }
}

type Attempt =
  | { ok: true }
  | {
      ok: false
      retryable: boolean
      reason: string
      status?: number
      error?: string
      retryAfterMs?: number | undefined
    }
