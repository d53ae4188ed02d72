import { ERR } from '../protocol/errors.ts'

/**
 * The capture format (NDJSON, optionally gzipped): one header line, then events in the order the tee
 * received them. `t` is the receive time in epoch milliseconds. A capture holds the plugin stream and
 * the primary's read endpoints sampled at instants, so one file is a self-contained parity case.
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
      /** When the snapshot started; the replay compares at this instant. */
      t: number
      /** How long reading every endpoint took: the primary's answers come from anywhere in [t, t + duration_ms]. */
      duration_ms?: number
      responses: Record<string, RecordedResponse>
    }
  | { kind: 'end'; t: number; stats?: Record<string, unknown> }

export type CaptureLine = CaptureHeader | CaptureEvent
