import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib'
import { type LagSample, framesIn } from '../compare/frames.ts'
import { ReadHistory } from '../compare/history.ts'
import type { Manifest } from '../compare/manifest.ts'
import { type NormalizedDoc, normalize } from '../compare/normalize.ts'
import type { CompareRules } from '../compare/rules.ts'
import { settleEndpoint, type TimedDoc, triageInstance } from '../compare/triage.ts'
import type { DiffClass, Severity } from '../compare/types.ts'
import { coerceError } from '../protocol/errors.ts'
import { exceedsDepth } from '../protocol/json-bounds.ts'
import { quantile } from '../util/quantile.ts'

/** An answer as the proxy captured it: status, the two headers that say how to read it, the bytes. */
export interface RawAnswer {
  status: number
  contentType: string | undefined
  contentEncoding: string | undefined
  body: Uint8Array | undefined
  /** When the request was sent (ms). */
  at: number
  /** When its last byte arrived (ms). */
  endedAt?: number
}

/** An answer decoded for the engine: the body only when it is JSON. */
export interface Answer {
  status: number
  body?: unknown
  at: number
  endedAt?: number
}

/** Nesting past which a body is compared by status alone (bound before the engine recurses). */
const MAX_BODY_DEPTH = 64

/**
 * Decodes a captured answer (CONTRACT.md §1: JSON): content-encoding undone within `maxBytes`,
 * the text parsed when it is JSON. A body that is not JSON (an HTML error page, the bundle) or
 * nests past {@link MAX_BODY_DEPTH} is left out: only the status is then compared.
 */
export function decodeAnswer(raw: RawAnswer, maxBytes: number): Answer {
  const answer: Answer = { status: raw.status, at: raw.at }
  if (raw.endedAt !== undefined) answer.endedAt = raw.endedAt
  if (raw.body === undefined || raw.body.length === 0) return answer
  let bytes: Uint8Array = raw.body
  try {
    const encoding = raw.contentEncoding?.trim().toLowerCase()
    const limit = { maxOutputLength: maxBytes }
    if (encoding === 'gzip' || encoding === 'x-gzip') bytes = gunzipSync(bytes, limit)
    else if (encoding === 'deflate') bytes = inflateSync(bytes, limit)
    else if (encoding === 'br') bytes = brotliDecompressSync(bytes, limit)
    else if (encoding !== undefined && encoding !== '' && encoding !== 'identity') return answer
    const body: unknown = JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'),
    )
    if (!exceedsDepth(body, MAX_BODY_DEPTH)) answer.body = body
  } catch {
    // Not JSON, or not decodable: the status alone is compared.
  }
  return answer
}

/** One mismatch of a judged pair. */
export interface PairMismatch {
  path: string
  signature: string
  class: DiffClass
  severity: Severity
  primary?: unknown
  shadow?: unknown
}

/** What the engine concluded about one user read and its shadow twin. */
export interface PairVerdict {
  /** Capped at {@link MAX_MISMATCHES_PER_PAIR}; `mismatchCount` has them all. */
  mismatches: PairMismatch[]
  mismatchCount: number
  /** Differences explained as lag (a frame behind, a counter in range, a series' edge). */
  explained: number
  waived: Record<string, number>
  /** Entities compared at the same frame, and the lag of those that were not. */
  paired: number
  lag: LagSample[]
  /** Judged with a later primary read as the sweep's second read (else the user's read stood for both). */
  bracketed: boolean
}

export const MAX_MISMATCHES_PER_PAIR = 50
/** Recent `/live` lag samples kept for the allowances (a thousand characters, ten reads). */
const MAX_LAG_SAMPLES = 10_000
const PREVIEW_CHARS = 500

/** A value small enough to keep as evidence, or the start of its JSON followed by `…`. */
export function preview(value: unknown): unknown {
  if (value === undefined) return undefined
  const text = JSON.stringify(value)
  return text.length <= PREVIEW_CHARS ? value : `${text.slice(0, PREVIEW_CHARS)}…`
}

/** A pair waiting for the primary's next read of its URL. */
interface Held {
  endpoint: string
  url: string
  first: NormalizedDoc
  firstAt: number
  shadow: NormalizedDoc
  shadowAt: number
  /** When the shadow's answer was complete: a primary read started after it brackets it. */
  shadowEndedAt: number
  /** The reads of the URL before this pair's, kept as they were when it arrived. */
  history: { primary: readonly TimedDoc[]; shadow: readonly TimedDoc[] }
  deadline: number
  /** The verdict, or why there is none. */
  done: (result: PairVerdict | Error) => void
}

/** Pairs held for their bracketing read at once, at most; past it a pair is judged on arrival. */
export const MAX_HELD = 2_000

export interface PairJudgeOptions {
  /** How long a pair waits for the primary's next read of its URL (default 5 s, one /live cache period). */
  secondReadMs?: number
}

/**
 * The comparison engine of `sweep`, applied to users' reads (issue 10 §1): each pair of answers is
 * normalized, frame-paired and triaged with the same rules, waivers and lag handling, against a
 * {@link ReadHistory} fed by every primary answer users received.
 *
 * The sweep brackets its shadow read between two primary reads. Here the user's read is the first;
 * the second is the next primary read of the same URL (another user's, or a sampled-out one) that
 * started after the shadow had answered, if one comes within `secondReadMs`, else the user's read
 * again (as in the replay judge). A shadow that answered later than the primary and so shows a newer
 * state is then explained as in the sweep. Reads seconds apart differ by everything that moved in
 * between, so no noise is inferred from them: every unexplained difference is a mismatch.
 */
export class PairJudge {
  readonly #rules: CompareRules
  readonly #history: ReadHistory
  readonly #statusOnly: ReadonlySet<string>
  readonly #charactersEndpoint: string
  readonly #secondReadMs: number
  readonly #held = new Map<string, Held[]>()
  #heldCount = 0
  /** Behind-lag of recent reads of the character endpoint (`/live`): the lag allowances assume it. */
  #recentLag: { at: number; ms: number }[] = []
  #behind = false

  constructor(rules: CompareRules, manifest: Manifest, options: PairJudgeOptions = {}) {
    this.#rules = rules
    this.#history = new ReadHistory({ perUrl: rules.lag.history, maxAgeMs: rules.lag.maxMs })
    this.#statusOnly = new Set(manifest.endpoints.filter((e) => e.compare === 'status').map((e) => e.name))
    this.#charactersEndpoint = manifest.characters.endpoint
    this.#secondReadMs = options.secondReadMs ?? 5_000
  }

  #doc(endpoint: string, answer: Answer): NormalizedDoc {
    const value =
      this.#statusOnly.has(endpoint) || answer.body === undefined
        ? { status: answer.status }
        : { status: answer.status, body: answer.body }
    return normalize(value, this.#rules.endpoints[endpoint])
  }

  /** A primary read: its frames archived, the URL's held pairs it brackets judged with it. */
  #primaryRead(endpoint: string, url: string, doc: NormalizedDoc, at: number, nowMs: number): void {
    for (const f of framesIn(doc, this.#rules.endpoints[endpoint]))
      this.#history.keepFrame(f.kind, f.key, at, f.value)
    const held = this.#held.get(url)
    if (held === undefined) return
    const bracketed = held.filter((h) => at >= h.shadowEndedAt)
    if (bracketed.length === 0) return
    this.#release(url, bracketed)
    for (const h of bracketed) this.#finish(h, { at, doc }, nowMs)
  }

  #release(url: string, pairs: readonly Held[]): void {
    const left = (this.#held.get(url) ?? []).filter((h) => !pairs.includes(h))
    if (left.length === 0) this.#held.delete(url)
    else this.#held.set(url, left)
    this.#heldCount -= pairs.length
  }

  /** A primary answer no shadow answer was paired with: history, and a bracket for held pairs. */
  feed(endpoint: string, url: string, primary: Answer, nowMs: number): void {
    const doc = this.#doc(endpoint, primary)
    this.#primaryRead(endpoint, url, doc, primary.at, nowMs)
    this.#history.push(url, 'primary', { at: primary.at, doc })
  }

  /**
   * A pair of answers: judged (`done`) when the primary's next read of its URL brackets it, or when
   * its wait is over ({@link expire}). Its own primary read brackets earlier pairs of the URL.
   */
  submit(
    endpoint: string,
    url: string,
    primary: Answer,
    shadow: Answer & { endedAt?: number },
    nowMs: number,
    done: (result: PairVerdict | Error) => void,
  ): void {
    const first = this.#doc(endpoint, primary)
    const shadowDoc = this.#doc(endpoint, shadow)
    // As in the sweep: every frame archived before triage, so a shadow entity can pair with the
    // primary's copy of its frame from any endpoint users read.
    this.#primaryRead(endpoint, url, first, primary.at, nowMs)
    for (const f of framesIn(shadowDoc, this.#rules.endpoints[endpoint])) {
      this.#history.keepFrame(f.kind, f.key, shadow.at, f.value, 'shadow')
    }
    const held: Held = {
      endpoint,
      url,
      first,
      firstAt: primary.at,
      shadow: shadowDoc,
      shadowAt: shadow.at,
      shadowEndedAt: shadow.endedAt ?? shadow.at,
      history: this.#history.of(url),
      deadline: nowMs + this.#secondReadMs,
      done,
    }
    this.#history.push(url, 'primary', { at: primary.at, doc: first })
    this.#history.push(url, 'shadow', { at: shadow.at, doc: shadowDoc })
    if (this.#heldCount >= MAX_HELD) {
      this.#finish(held, undefined, nowMs)
      return
    }
    const list = this.#held.get(url)
    if (list === undefined) this.#held.set(url, [held])
    else list.push(held)
    this.#heldCount += 1
  }

  /** Judges the pairs whose wait is over (every held pair with `all`), on the reads they have. */
  expire(nowMs: number, all = false): void {
    for (const [url, held] of [...this.#held]) {
      const due = all ? held : held.filter((h) => h.deadline <= nowMs)
      if (due.length === 0) continue
      this.#release(url, due)
      for (const h of due) this.#finish(h, undefined, nowMs)
    }
  }

  /** Pairs waiting for their bracketing read. */
  get held(): number {
    return this.#heldCount
  }

  /** Judges a pair and hands over the verdict; one pair's failure never stops the others. */
  #finish(h: Held, second: { at: number; doc: NormalizedDoc } | undefined, nowMs: number): void {
    let result: PairVerdict | Error
    try {
      result = this.#judge(h, second, nowMs)
    } catch (caught) {
      result = coerceError(caught)
    }
    h.done(result)
  }

  #judge(h: Held, second: { at: number; doc: NormalizedDoc } | undefined, nowMs: number): PairVerdict {
    const endpointRules = this.#rules.endpoints[h.endpoint]
    const instance = triageInstance(
      {
        url: h.url,
        first: h.first,
        second: second?.doc ?? h.first,
        shadow: h.shadow,
        gapMs: second === undefined ? 0 : second.at - h.firstAt,
        at: h.shadowAt,
        history: h.history,
        frame: (kind, key, side) => this.#history.frame(kind, key, nowMs, side),
        newestFrame: (kind, character, side) => this.#history.newestFrame(kind, character, nowMs, side),
      },
      {
        endpoint: h.endpoint,
        rules: this.#rules,
        endpointRules,
        nowMs,
        lagMs: this.#lagMs(nowMs),
        behind: this.#behind,
      },
    )
    const settled = settleEndpoint([{ ...instance, noise: new Map() }], this.#rules)
    if (h.endpoint === this.#charactersEndpoint) this.#noteLag(settled.lag, nowMs)
    const mismatches = settled.differences.filter((d) => d.status === 'mismatch')
    return {
      mismatches: mismatches.slice(0, MAX_MISMATCHES_PER_PAIR).map((d) => ({
        path: d.path,
        signature: d.signature,
        class: d.class,
        severity: d.severity,
        ...(d.primary === undefined ? {} : { primary: preview(d.primary) }),
        ...(d.shadow === undefined ? {} : { shadow: preview(d.shadow) }),
      })),
      mismatchCount: mismatches.length,
      explained: settled.explained,
      waived: settled.waived,
      paired: settled.paired,
      lag: settled.lag,
      bracketed: second !== undefined,
    }
  }

  /**
   * As the sweep measures lag on its character endpoint: how far the shadow trailed in recent
   * `/live` reads sets the lag allowances, and whether the latest one was behind.
   */
  #noteLag(lag: readonly LagSample[], nowMs: number): void {
    this.#behind = lag.some((l) => l.ms > 0)
    for (const l of lag) if (l.ms > 0) this.#recentLag.push({ at: nowMs, ms: l.ms })
    if (this.#recentLag.length > MAX_LAG_SAMPLES)
      this.#recentLag.splice(0, this.#recentLag.length - MAX_LAG_SAMPLES)
  }

  #lagMs(nowMs: number): number {
    const since = nowMs - this.#rules.lag.maxMs
    if (this.#recentLag.length > 0 && this.#recentLag[0]!.at < since) {
      this.#recentLag = this.#recentLag.filter((l) => l.at >= since)
    }
    const sorted = this.#recentLag.map((l) => l.ms).sort((a, b) => a - b)
    return Math.max(this.#rules.lag.assumedMs, quantile(sorted, 0.95) ?? 0)
  }

  /** Forgets reads and frames past the lag horizon. */
  prune(nowMs: number): void {
    this.#history.prune(nowMs - this.#rules.lag.maxMs)
  }
}
