import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { Manifest } from '../compare/manifest.ts'
import type { CompareRules } from '../compare/rules.ts'
import type { RawAnswer } from './judge.ts'
import type { MirrorJob, MirrorOutcome, MirrorReply, MirrorWorkerData } from './mirror-worker.ts'

export interface MirrorClientOptions {
  rules: CompareRules
  manifest: Manifest
  shadow: MirrorWorkerData['shadow']
  maxBodyBytes: number
  /** Messages handed to the mirror's thread and not yet taken in, at most. */
  maxBacklog: number
  secondReadMs: number
  logger: Logger
  /** Called once per mirrored read, from the proxy's thread. */
  onOutcome: (id: number, outcome: MirrorOutcome) => void
}

/** A body's bytes moved to the mirror's thread without a copy when it owns its whole buffer. */
function transferable(answer: RawAnswer | undefined): ArrayBuffer[] {
  const body = answer?.body
  if (body === undefined || !(body.buffer instanceof ArrayBuffer)) return []
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? [body.buffer] : []
}

/**
 * The proxy's handle on the mirror's thread (mirror-worker.ts), where the shadow is read and the
 * pairs judged. The proxy's own thread only posts: a GET to mirror as the user's request arrives,
 * the user's answer once it has streamed. Bounded: past `maxBacklog` messages not yet taken in,
 * new mirrors and history feeds are refused (the caller counts them). A thread that dies is
 * replaced; the reads it had in hand end as `judge-dropped`.
 */
export class MirrorClient {
  readonly #o: MirrorClientOptions
  readonly #log: Logger
  readonly #backlogBuffer = new SharedArrayBuffer(4)
  readonly #backlog = new Int32Array(this.#backlogBuffer)
  readonly #pausedBuffer = new SharedArrayBuffer(8)
  readonly #paused = new BigInt64Array(this.#pausedBuffer)
  /** Mirrors posted whose outcome has not come back. */
  readonly #open = new Set<number>()
  #worker: Worker
  #closing = false

  constructor(options: MirrorClientOptions) {
    this.#o = options
    this.#log = options.logger.child({ component: 'shadow-read-mirror' })
    this.#worker = this.#start()
  }

  #start(): Worker {
    const workerData: MirrorWorkerData = {
      rules: this.#o.rules,
      manifest: this.#o.manifest,
      shadow: this.#o.shadow,
      maxBodyBytes: this.#o.maxBodyBytes,
      secondReadMs: this.#o.secondReadMs,
      backlog: this.#backlogBuffer,
      pausedUntil: this.#pausedBuffer,
    }
    const worker = new Worker(new URL('./mirror-worker.ts', import.meta.url), { workerData })
    worker.on('message', (reply: MirrorReply) => {
      if (reply.type === 'log') this.#log[reply.level](reply.fields, reply.msg)
      else if (reply.type === 'outcome' && this.#open.delete(reply.id))
        this.#o.onOutcome(reply.id, reply.outcome)
    })
    worker.on('error', (err) => this.#log.error({ err }, 'mirror thread failed'))
    worker.on('exit', (code) => {
      if (this.#closing || worker !== this.#worker) return
      this.#log.error({ code }, 'mirror thread exited; starting another (its read history is lost)')
      for (const id of [...this.#open]) {
        this.#open.delete(id)
        this.#o.onOutcome(id, { kind: 'judge-dropped', reason: `mirror thread exited (${code})` })
      }
      Atomics.store(this.#backlog, 0, 0)
      this.#worker = this.#start()
    })
    return worker
  }

  #room(): boolean {
    return !this.#closing && Atomics.load(this.#backlog, 0) < this.#o.maxBacklog
  }

  #post(job: MirrorJob, transfer: ArrayBuffer[] = []): void {
    Atomics.add(this.#backlog, 0, 1)
    this.#worker.postMessage(job, transfer)
  }

  /** Whether the shadow's breaker is refusing mirrors now (nothing is then posted or copied). */
  paused(nowMs: number): boolean {
    return nowMs < Number(Atomics.load(this.#paused, 0))
  }

  /** Posts a GET for the shadow; false (nothing posted) when the backlog is full. */
  mirror(id: number, endpoint: string, url: string, headers: Record<string, string>): boolean {
    if (!this.#room()) return false
    this.#open.add(id)
    this.#post({ type: 'mirror', id, endpoint, url, headers })
    return true
  }

  /** The user's answer to mirror `id` (undefined: not comparable); its bytes only if there is room. */
  primary(id: number, answer: RawAnswer | undefined): void {
    if (!this.#open.has(id)) return
    if (answer !== undefined && !this.#room())
      this.#post({ type: 'primary', id, answer: undefined, skipped: true })
    else this.#post({ type: 'primary', id, answer }, transferable(answer))
  }

  /** A primary answer for the history only; false when the backlog is full. */
  feed(endpoint: string, url: string, answer: RawAnswer): boolean {
    if (!this.#room()) return false
    this.#post({ type: 'feed', endpoint, url, answer }, transferable(answer))
    return true
  }

  /** Mirrors whose outcome has not come back. */
  get open(): number {
    return this.#open.size
  }

  /** Has every held pair judged now, on the reads it has. */
  flush(): void {
    if (!this.#closing) this.#worker.postMessage({ type: 'flush' } satisfies MirrorJob)
  }

  /** Until every mirror has its outcome (held pairs judged as they are), or `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.#open.size > 0 && Date.now() < deadline) {
      this.flush()
      await sleep(20)
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    const closed = new Promise<void>((resolve) => {
      this.#worker.on('message', (r: MirrorReply) => {
        if (r.type === 'closed') resolve()
      })
    })
    this.#worker.postMessage({ type: 'close' } satisfies MirrorJob)
    await Promise.race([closed, sleep(2_000)])
    await this.#worker.terminate()
    this.#open.clear()
  }
}
