import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import {
  charactersIn,
  expandCharacters,
  expandTime,
  type Manifest,
  parseManifest,
} from '../compare/manifest.ts'
import { BackendClient } from '../compare/poller.ts'
import type { RecordedResponse } from './format.ts'

/**
 * The one endpoint catalog (issue 9 §8): `compare/endpoints.json`, shipped with the code. Captures
 * sample what sweeps compare, so a replay is judged on the same routes by the same rules.
 */
export const SHIPPED_CATALOG: Manifest = parseManifest(
  JSON.parse(readFileSync(new URL('../../compare/endpoints.json', import.meta.url), 'utf8')),
)

/** The catalog's path templates, the default of every capture's snapshots. */
export const DEFAULT_SNAPSHOT_ENDPOINTS: readonly string[] = SHIPPED_CATALOG.endpoints.map((e) => e.path)

export interface SnapshotOptions {
  /** The backend's HTTP base URL. */
  baseUrl: string
  /** Path templates; `{character}` expands per player in the same snapshot's `/live`, `{now-Ns}` at `at`. */
  endpoints: readonly string[]
  /** A session cookie, sent but never recorded. */
  cookie?: string
  timeoutMs?: number
  /** The snapshot's instant (ms), for `{now-Ns}`; default: now. */
  at?: number
  /** Which side the reads count against (the primary's read budget is the tighter one). */
  side?: 'primary' | 'shadow'
  logger: Logger
}

/**
 * Reads every endpoint once through the harness's one HTTP reader ({@link BackendClient}); a failed
 * request becomes `{status: 0, body: {error}}` rather than throwing.
 */
export async function takeSnapshot(o: SnapshotOptions): Promise<Record<string, RecordedResponse>> {
  const client = new BackendClient({
    side: o.side ?? 'primary',
    url: o.baseUrl,
    logger: o.logger,
    ...(o.cookie === undefined ? {} : { auth: { kind: 'cookie' as const, cookie: o.cookie } }),
    ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
  })
  try {
    const at = o.at ?? Date.now()
    const read = async (path: string): Promise<RecordedResponse> => {
      const r = await client.get(path)
      return r.ok ? { status: r.status, body: r.body } : { status: 0, body: { error: r.message } }
    }
    const responses: Record<string, RecordedResponse> = {}
    const templates = o.endpoints.map((e) => expandTime(e, at))
    const plain = templates.filter((e) => !e.includes('{character}'))
    const perCharacter = templates.filter((e) => e.includes('{character}'))
    for (const path of plain) responses[path] = await read(path)
    if (perCharacter.length > 0) {
      const live = responses['/live'] ?? (await read('/live'))
      const names = charactersIn(live.body, SHIPPED_CATALOG)
      for (const template of perCharacter) {
        for (const path of expandCharacters(template, names)) responses[path] = await read(path)
      }
    }
    return responses
  } finally {
    await client.close()
  }
}

/**
 * Takes a snapshot every `intervalMs` and hands it to `onSnapshot` with the instant it started.
 * A tick is skipped while the previous snapshot is still running.
 */
export class SnapshotPoller {
  readonly #o: SnapshotOptions & { intervalMs: number; now: () => number }
  readonly #onSnapshot: (t: number, responses: Record<string, RecordedResponse>, durationMs: number) => void
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined

  constructor(
    options: SnapshotOptions & { intervalMs: number; now: () => number },
    onSnapshot: (t: number, responses: Record<string, RecordedResponse>, durationMs: number) => void,
  ) {
    this.#o = options
    this.#onSnapshot = onSnapshot
  }

  start(): void {
    this.#timer = setInterval(() => void this.snapshotNow(), this.#o.intervalMs)
  }

  /** Takes one snapshot now (also used at the end of a capture). */
  async snapshotNow(): Promise<void> {
    if (this.#running !== undefined) return this.#running
    const t = this.#o.now()
    this.#running = takeSnapshot({ ...this.#o, at: t })
      .then((responses) => this.#onSnapshot(t, responses, this.#o.now() - t))
      .finally(() => {
        this.#running = undefined
      })
    return this.#running
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }
}
