import { ERR } from '../protocol/errors.ts'

/**
 * The capture format (NDJSON, optionally gzipped): one header line, then events in the order the tee
 * received them. `t` is the receive time in epoch milliseconds. A capture holds the plugin stream and
 * the primary's read endpoints sampled at instants, so one file is a self-contained parity case.
 *
 * A live capture may start with a baseline: a snapshot with `"baseline":true`, the first event after
 * the header, taken before the first frame was recorded. It records what the primary already held,
 * which no replay of the frames can reproduce: a replay tells that history apart by it, and never
 * compares it as a snapshot (readers older than the field would).
 *
 * A complete capture ends with an `end` event. Every line ends with `\n`, and a gzipped capture is
 * sync-flushed at least once a second of capture time and after every snapshot, so the file a crashed
 * tee leaves behind holds every record up to about a second before the crash (no gzip trailer, perhaps
 * half a line): readers keep the complete records and report it as truncated.
 */

export const CAPTURE_FORMAT = 'overlord-capture'
export const CAPTURE_VERSION = 1

/** A capture that cannot be written or read. */
export const TEE_ERR_CAPTURE = ERR.TEE_CAPTURE

export interface CaptureHeader {
  kind: 'header'
  format: typeof CAPTURE_FORMAT
  version: number
  /** Which tee made it: `proxy`, `mirror` or `simulator`. */
  source: string
  started_at: string
  /** The primary's base URL without credentials or query, when snapshots were taken. */
  primary?: string
  snapshot_interval_ms?: number
  /** Free-form provenance (simulator seed, fleet size...). */
  meta?: Record<string, unknown>
}

/** One primary response: status and parsed JSON body (or text when not JSON). Headers are never kept. */
export interface RecordedResponse {
  status: number
  body: unknown
}

export type CaptureEvent =
  | { kind: 'open'; t: number; conn: string }
  | { kind: 'frame'; t: number; conn: string; data: string }
  | { kind: 'close'; t: number; conn: string; code: number }
  | {
      kind: 'snapshot'
      /** When the snapshot started; the replay compares at this instant (a baseline is not compared). */
      t: number
      /** The primary's state before the capture: present (and first) only on the baseline snapshot. */
      baseline?: true
      /** How long reading every endpoint took: the primary's answers come from anywhere in [t, t + duration_ms]. */
      duration_ms?: number
      responses: Record<string, RecordedResponse>
    }
  | { kind: 'end'; t: number; stats?: Record<string, unknown> }

export type CaptureLine = CaptureHeader | CaptureEvent
