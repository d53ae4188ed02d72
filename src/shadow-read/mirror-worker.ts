import { setPriority } from 'node:os'
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads'
import type { ShadowErrorKind } from '../compare/ledger.ts'
import type { Manifest } from '../compare/manifest.ts'
import type { CompareRules } from '../compare/rules.ts'
import { coerceError } from '../protocol/errors.ts'
import { decodeAnswer, PairJudge, type PairVerdict, type RawAnswer } from './judge.ts'
import { ShadowClient, type ShadowResult } from './shadow-client.ts'

/** What the proxy's thread gives the mirror's thread (see mirror-client.ts). */
export interface MirrorWorkerData {
  rules: CompareRules
  manifest: Manifest
  shadow: { url: string; concurrency: number; queue: number; timeoutMs: number }
  maxBodyBytes: number
  secondReadMs: number
  /** Int32[0]: messages posted and not yet taken in (decremented here). */
  backlog: SharedArrayBuffer
  /** BigInt64[0]: the instant (ms) until which the shadow's breaker refuses mirrors (written here). */
  pausedUntil: SharedArrayBuffer
}

export type MirrorJob =
  /** Send this GET to the shadow now (the user's request just arrived). */
  | { type: 'mirror'; id: number; endpoint: string; url: string; headers: Record<string, string> }
  /** The user's answer to a mirrored GET: undefined when it cannot be compared; `skipped` past the backlog. */
  | { type: 'primary'; id: number; answer: RawAnswer | undefined; skipped?: boolean }
  /** A primary answer with no mirror: history for lag pairing. */
  | { type: 'feed'; endpoint: string; url: string; answer: RawAnswer }
  /** Judge every held pair now, on the reads it has (shutdown, tests). */
  | { type: 'flush' }
  | { type: 'close' }

/** How one mirrored read ended: exactly one per `mirror` job. */
export type MirrorOutcome =
  | { kind: 'dropped' }
  | { kind: 'unavailable' }
  | { kind: 'shadow-error'; error: ShadowErrorKind }
  | { kind: 'uncomparable' }
  | { kind: 'judge-dropped'; reason: string }
  | { kind: 'verdict'; verdict: PairVerdict }

export type MirrorReply =
  | { type: 'outcome'; id: number; outcome: MirrorOutcome }
  | { type: 'log'; level: 'warn' | 'error'; fields: Record<string, unknown>; msg: string }
  | { type: 'closed' }

interface Mirror {
  endpoint: string
  url: string
  /** Refused by the shadow's queue or breaker: its primary answer only feeds the history. */
  refused: boolean
  primary?: RawAnswer | null | 'skipped'
  shadow?: ShadowResult
}

const EXPIRE_EVERY_MS = 200
const PRUNE_EVERY_MS = 5_000

// The mirror on its own thread: the shadow's connections and answers, the decoding, normalizing and
// diffing of both answers never run on the loop that answers users. At the lowest CPU priority
// (Linux: this thread only), so on a host shared with the primary it works on idle CPU; past its
// backlog, what is dropped is a comparison, never a user's time.
try {
  setPriority(19)
} catch {
  // Not allowed here: the process's own priority.
}

const data = workerData as MirrorWorkerData
const port = parentPort!
const reply = (r: MirrorReply) => port.postMessage(r)
const log = {
  warn: (fields: object, msg: string) => reply({ type: 'log', level: 'warn', fields: { ...fields }, msg }),
  error: (fields: object, msg: string) => reply({ type: 'log', level: 'error', fields: { ...fields }, msg }),
}
const backlog = new Int32Array(data.backlog)
const pausedUntil = new BigInt64Array(data.pausedUntil)
const judge = new PairJudge(data.rules, data.manifest, { secondReadMs: data.secondReadMs })
const shadow = new ShadowClient({
  ...data.shadow,
  maxBodyBytes: data.maxBodyBytes,
  logger: log,
  onPause: (until) => Atomics.store(pausedUntil, 0, BigInt(until)),
})
const mirrors = new Map<number, Mirror>()
const decode = (answer: RawAnswer) => decodeAnswer(answer, data.maxBodyBytes)
const outcome = (id: number, o: MirrorOutcome) => reply({ type: 'outcome', id, outcome: o })

function settle(id: number, m: Mirror): void {
  const { primary, shadow: result } = m
  if (primary === undefined || result === undefined) return
  mirrors.delete(id)
  const answer = primary === null || primary === 'skipped' ? undefined : primary
  if (!result.ok) {
    outcome(id, { kind: 'shadow-error', error: result.kind })
    if (answer !== undefined) judge.feed(m.endpoint, m.url, decode(answer), Date.now())
  } else if (primary === null) outcome(id, { kind: 'uncomparable' })
  else if (answer === undefined) outcome(id, { kind: 'judge-dropped', reason: 'backlog full' })
  else if (result.answer.status >= 500 && answer.status < 500) {
    outcome(id, { kind: 'shadow-error', error: 'status-5xx' })
    judge.feed(m.endpoint, m.url, decode(answer), Date.now())
  } else {
    judge.submit(m.endpoint, m.url, decode(answer), decode(result.answer), Date.now(), (v) =>
      outcome(
        id,
        v instanceof Error ? { kind: 'judge-dropped', reason: v.message } : { kind: 'verdict', verdict: v },
      ),
    )
  }
}

function handle(job: MirrorJob): void {
  switch (job.type) {
    case 'mirror': {
      const m: Mirror = { endpoint: job.endpoint, url: job.url, refused: false }
      mirrors.set(job.id, m)
      const offer = shadow.offer(job.url, job.headers, (result) => {
        m.shadow = result
        settle(job.id, m)
      })
      if (offer === 'dropped' || offer === 'unavailable') {
        m.refused = true
        outcome(job.id, { kind: offer })
      }
      return
    }
    case 'primary': {
      const m = mirrors.get(job.id)
      if (m === undefined) return
      if (m.refused) {
        mirrors.delete(job.id)
        if (job.answer !== undefined) judge.feed(m.endpoint, m.url, decode(job.answer), Date.now())
        return
      }
      m.primary = job.skipped === true ? 'skipped' : (job.answer ?? null)
      settle(job.id, m)
      return
    }
    case 'feed':
      judge.feed(job.endpoint, job.url, decode(job.answer), Date.now())
      return
    case 'flush':
      judge.expire(Date.now(), true)
      return
    case 'close':
      void shadow.close().finally(() => reply({ type: 'closed' }))
  }
}

function take(job: MirrorJob): void {
  try {
    handle(job)
  } catch (caught) {
    // A message handler that throws would end the thread: the mirror's outcome says it instead.
    const reason = coerceError(caught).message
    if (job.type === 'mirror' || job.type === 'primary') {
      mirrors.delete(job.id)
      outcome(job.id, { kind: 'judge-dropped', reason })
    } else log.error({ reason, job: job.type }, 'mirror thread fault')
  } finally {
    if (job.type === 'mirror' || job.type === 'primary' || job.type === 'feed') Atomics.sub(backlog, 0, 1)
  }
}

port.on('message', take)

/** A timer's callback has no caller to catch for it (STYLE): faults go to the proxy's log. */
const every = (ms: number, work: () => void) =>
  setInterval(() => {
    try {
      work()
    } catch (caught) {
      log.error({ reason: coerceError(caught).message }, 'mirror thread fault')
    }
  }, ms).unref()
every(EXPIRE_EVERY_MS, () => {
  // A thread starved of CPU (it runs niced) may wake to a timer with reads already waiting: take
  // them first, so a pair's bracketing read is never passed over for the clock.
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    take(m.message as MirrorJob)
  }
  judge.expire(Date.now())
})
every(PRUNE_EVERY_MS, () => judge.prune(Date.now()))
