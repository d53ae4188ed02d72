import { pick } from '../util/json-path.ts'
import { request } from 'undici'
import type { BackendClient } from './poller.ts'

/**
 * Input accounting (issue 4 §4): what was mirrored to the shadow against what it received and
 * applied, so "the shadow never got it" is not confused with "the shadow got it wrong".
 *
 * The tee's mirror counters (`src/tee/mirror-counters.ts`) hold
 * `frames_in = frames_forwarded + dropped_* + pending`, where a frame is forwarded only once the tee
 * flushed it to the kernel. So every frame the tee could not hand over is in {@link Accounting.teeDropped}
 * (by reason in the tee's metrics), and {@link Accounting.lostInTransit} is only what the tee cannot
 * see: frames flushed towards a shadow that died or restarted before reading them.
 */
export interface Accounting {
  /** The shadow's `/metrics.json` counters (CONTRACT: `frames_received`, `frames_accepted`, …). */
  shadow: Record<string, unknown> | null
  /** The tee's metrics, when a URL was given. */
  tee: Record<string, unknown> | null
  /** Frames handed to the tee's mirror (tee `frames_in`). */
  teeIn: number | null
  /** Frames the tee dropped, over every `dropped_*` reason (overflow, slow, no link, closed, unflushed). */
  teeDropped: number | null
  /** Frames queued or in the tee's send buffers when it was read (tee `pending`). */
  teePending: number | null
  /** Frames the tee flushed to the shadow's socket (tee `frames_forwarded`). */
  mirrored: number | null
  received: number | null
  applied: number | null
  /**
   * Forwarded by the tee but never received: frames in the kernel's buffers when the shadow died or
   * restarted (its counters reset too). Exact only while the stream is quiet: under traffic it also
   * holds the frames on the wire between the two reads. Negative when the shadow received frames
   * from elsewhere (a restarted tee, a plugin connected to it directly).
   */
  lostInTransit: number | null
  /** Received but not applied (bad frames, dropped persistence). */
  notApplied: number | null
}

export interface AccountingOptions {
  primary: BackendClient
  shadow: BackendClient
  teeMetricsUrl?: string | undefined
  /**
   * Where the mirror counters sit in the tee's `/metrics`, as a dotted path; both tee modes
   * (`tee proxy`, `tee mirror`) serve them under `mirror`.
   */
  teeMirrorPath?: string
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/** Sums every `dropped_*` counter, so a drop reason added to the tee is never left out. */
function sumDropped(mirror: unknown): number | null {
  if (typeof mirror !== 'object' || mirror === null) return null
  let total = 0
  let seen = false
  for (const [key, value] of Object.entries(mirror)) {
    if (!key.startsWith('dropped_')) continue
    const n = num(value)
    if (n === null) return null
    total += n
    seen = true
  }
  return seen ? total : null
}

/** Accounting from counters already read: the tee's `/metrics` and the shadow's `/metrics.json`. */
export function accountInput(
  tee: Record<string, unknown> | null,
  shadow: Record<string, unknown> | null,
  teeMirrorPath = 'mirror',
): Accounting {
  const mirror = tee === null ? undefined : pick(tee, teeMirrorPath)
  const field = (name: string): number | null => num(pick(mirror, name))
  const mirrored = field('frames_forwarded')
  const received = num(shadow?.frames_received)
  const applied = num(shadow?.frames_accepted)
  return {
    shadow,
    tee,
    teeIn: field('frames_in'),
    teeDropped: sumDropped(mirror),
    teePending: field('pending'),
    mirrored,
    received,
    applied,
    lostInTransit: mirrored !== null && received !== null ? mirrored - received : null,
    notApplied: received !== null && applied !== null ? received - applied : null,
  }
}

/** Reads the counters; a missing source yields nulls (reported), never an exception. */
export async function readAccounting(options: AccountingOptions): Promise<Accounting> {
  const res = await options.shadow.get('/metrics.json')
  const shadow =
    res.ok && res.status === 200 && typeof res.body === 'object' && res.body !== null
      ? (res.body as Record<string, unknown>)
      : null
  let tee: Record<string, unknown> | null = null
  if (options.teeMetricsUrl !== undefined) {
    try {
      const teeRes = await request(options.teeMetricsUrl, { headersTimeout: 5_000, bodyTimeout: 5_000 })
      const body = (await teeRes.body.json()) as unknown
      if (teeRes.statusCode === 200 && typeof body === 'object' && body !== null) {
        tee = body as Record<string, unknown>
      }
    } catch {
      tee = null
    }
  }
  return accountInput(tee, shadow, options.teeMirrorPath)
}
