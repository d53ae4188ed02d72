import { pick } from '../util/json-path.ts'
import { request } from 'undici'
import type { BackendClient } from './poller.ts'

/**
 * Input accounting (issue 4 §4): what was mirrored to the shadow against what it received and
 * applied, so "the shadow never got it" is not confused with "the shadow got it wrong".
 */
export interface Accounting {
  /** The shadow's `/metrics.json` counters (CONTRACT: `frames_received`, `frames_accepted`, …). */
  shadow: Record<string, unknown> | null
  /** The tee's metrics, when a URL was given. */
  tee: Record<string, unknown> | null
  mirrored: number | null
  received: number | null
  applied: number | null
  /** Mirrored but never received: lost between tee and shadow. */
  lostInTransit: number | null
  /** Received but not applied (bad frames, dropped persistence). */
  notApplied: number | null
}

export interface AccountingOptions {
  primary: BackendClient
  shadow: BackendClient
  teeMetricsUrl?: string | undefined
  /**
   * The tee counter of frames handed to the shadow, as a dotted path into its `/metrics`;
   * both tee modes (`tee proxy`, `tee mirror`) serve it as `mirror.frames_forwarded`.
   */
  teeMirroredField?: string
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

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
  const mirrored = num(pick(tee, options.teeMirroredField ?? 'mirror.frames_forwarded'))
  const received = num(shadow?.frames_received)
  const applied = num(shadow?.frames_accepted)
  return {
    shadow,
    tee,
    mirrored,
    received,
    applied,
    lostInTransit: mirrored !== null && received !== null ? mirrored - received : null,
    notApplied: received !== null && applied !== null ? received - applied : null,
  }
}
