import type { Logger } from 'pino'
import { request } from 'undici'
import { coerceError } from '../protocol/errors.ts'
import type { RecordedResponse } from './format.ts'

/** The primary's read endpoints a capture samples by default (CONTRACT.md §4). */
export const DEFAULT_SNAPSHOT_ENDPOINTS = [
  '/live',
  '/trails?seconds=600',
  '/total-kills',
  '/total-rares',
  '/stats/{character}',
  '/character-stats/list',
  '/portals',
  '/quest-status',
  '/vital-sharing/peers',
]

export interface SnapshotOptions {
  /** The primary's HTTP base URL. */
  baseUrl: string
  /** Paths; `{character}` expands to every player in the same snapshot's `/live`. */
  endpoints: readonly string[]
  /** A session cookie for the primary, sent but never recorded. */
  cookie?: string
  timeoutMs?: number
  logger: Logger
}

/** Reads every endpoint once; a failed request becomes `{status: 0, body: {error}}` rather than throwing. */
export async function takeSnapshot(o: SnapshotOptions): Promise<Record<string, RecordedResponse>> {
  const responses: Record<string, RecordedResponse> = {}
  const plain = o.endpoints.filter((e) => !e.includes('{character}'))
  const perCharacter = o.endpoints.filter((e) => e.includes('{character}'))
  for (const path of plain) responses[path] = await fetchJson(o, path)
  if (perCharacter.length > 0) {
    const live = responses['/live'] ?? (await fetchJson(o, '/live'))
    for (const name of playerNames(live.body)) {
      for (const template of perCharacter) {
        const path = template.replaceAll('{character}', encodeURIComponent(name))
        responses[path] = await fetchJson(o, path)
      }
    }
  }
  return responses
}

function playerNames(body: unknown): string[] {
  const players = (body as { players?: unknown } | null)?.players
  if (!Array.isArray(players)) return []
  return players
    .map((p) => (p as { character_name?: unknown }).character_name)
    .filter((n): n is string => typeof n === 'string')
}

async function fetchJson(o: SnapshotOptions, path: string): Promise<RecordedResponse> {
  try {
    const res = await request(new URL(path, o.baseUrl), {
      method: 'GET',
      headers: o.cookie === undefined ? {} : { cookie: o.cookie },
      headersTimeout: o.timeoutMs ?? 5_000,
      bodyTimeout: o.timeoutMs ?? 5_000,
    })
    const text = await res.body.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // Not JSON: kept as text so the comparison still sees it.
    }
    return { status: res.statusCode, body }
  } catch (err) {
    o.logger.debug({ err: coerceError(err), path }, 'snapshot request failed')
    return { status: 0, body: { error: coerceError(err).message } }
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
    this.#running = takeSnapshot(this.#o)
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
