import { readFile } from 'node:fs/promises'
import { constants as zlibConstants, gunzipSync } from 'node:zlib'
import { coerceError, OverlordError } from '../protocol/errors.ts'
import {
  CAPTURE_FORMAT,
  type CaptureEvent,
  type CaptureHeader,
  type RecordedResponse,
  TEE_ERR_CAPTURE,
} from './format.ts'

/** A capture loaded in memory: header and events in recorded order. */
export interface Capture {
  header: CaptureHeader
  /** Every complete event, the baseline snapshot included (it is the first, when there is one). */
  events: CaptureEvent[]
  /** What the primary held before the capture started (format.ts), when the capture recorded it. */
  baseline?: Record<string, RecordedResponse>
  /** The capture did not end properly (no end record, a record cut short, gzip stream cut short). */
  truncated: boolean
  /** For a person, when `truncated`: what is missing and that the complete part is what replays. */
  warning?: string
}

const EVENT_KINDS = new Set(['open', 'frame', 'close', 'snapshot', 'end'])

/** `1234567` as `1 234 567`. */
const grouped = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ')

function parseLine(line: string, source: string, lineNo: number): unknown {
  try {
    return JSON.parse(line)
  } catch (cause) {
    throw new OverlordError(TEE_ERR_CAPTURE, `${source}:${lineNo}: not JSON`, { cause })
  }
}

/**
 * Parses capture text (pure): the header line first, then one event per line. A last line without its
 * newline that does not parse was cut short by a crash: it is left out and the capture is reported as
 * truncated, as is one without an end record. `cut` says the bytes themselves stopped short (a gzip
 * stream without its trailer).
 */
export function parseCapture(text: string, source = 'capture', cut?: string): Capture {
  const lines = text.split('\n')
  // What follows the last newline: empty in a complete file, part of a record in a crashed one.
  const tail = lines.pop() as string
  let cutRecord = false
  if (tail.trim() !== '') {
    try {
      JSON.parse(tail)
      lines.push(tail)
    } catch {
      cutRecord = true
    }
  }
  const events: CaptureEvent[] = []
  let header: CaptureHeader | undefined
  let baseline: Record<string, RecordedResponse> | undefined
  let ended = false
  lines.forEach((line, i) => {
    if (line.trim() === '') return
    const value = parseLine(line, source, i + 1)
    const kind = (value as { kind?: unknown }).kind
    if (header === undefined) {
      if (kind !== 'header' || (value as CaptureHeader).format !== CAPTURE_FORMAT) {
        throw new OverlordError(TEE_ERR_CAPTURE, `${source}: no ${CAPTURE_FORMAT} header`)
      }
      header = value as CaptureHeader
      return
    }
    if (typeof kind !== 'string' || !EVENT_KINDS.has(kind)) {
      throw new OverlordError(TEE_ERR_CAPTURE, `${source}:${i + 1}: unknown event kind ${String(kind)}`)
    }
    const event = value as CaptureEvent
    if (event.kind === 'snapshot' && event.baseline === true) {
      if (events.length > 0) {
        throw new OverlordError(TEE_ERR_CAPTURE, `${source}:${i + 1}: a baseline snapshot after other events`)
      }
      baseline = event.responses
    }
    if (event.kind === 'end') ended = true
    events.push(event)
  })
  if (header === undefined) {
    throw new OverlordError(
      TEE_ERR_CAPTURE,
      cutRecord || cut !== undefined
        ? `${source}: cut short before its header line was complete; there is nothing to replay`
        : `${source}: empty capture`,
    )
  }
  const capture: Capture = { header, events, truncated: false }
  if (baseline !== undefined) capture.baseline = baseline
  const missing = [
    ...(cut === undefined ? [] : [cut]),
    ...(cutRecord ? ['the last record cut short'] : []),
    ...(ended ? [] : ['no end record']),
  ]
  if (missing.length > 0) {
    capture.truncated = true
    capture.warning = `${source}: truncated after ${grouped(events.length)} events (${missing.join(', ')}); replaying what is complete`
  }
  return capture
}

/** Gunzips a capture; one whose stream stops short (a crashed tee's) gives what it holds, and says so. */
function gunzipCapture(raw: Buffer, source: string): { text: string; cut?: string } {
  try {
    return { text: gunzipSync(raw).toString('utf8') }
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'Z_BUF_ERROR') {
      throw new OverlordError(TEE_ERR_CAPTURE, `${source}: not a readable gzip stream`, {
        cause: coerceError(err),
      })
    }
  }
  // Z_SYNC_FLUSH as the final flush: inflate hands over everything decodable instead of failing.
  const text = gunzipSync(raw, { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString('utf8')
  return { text, cut: 'gzip stream cut short' }
}

/**
 * Reads a capture file, gzipped or not (detected by its magic bytes, not its name). A truncated file
 * (a crashed capture) gives its complete records, with `truncated` and a `warning`.
 */
export async function readCapture(path: string): Promise<Capture> {
  const raw = await readFile(path)
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    const { text, cut } = gunzipCapture(raw, path)
    return parseCapture(text, path, cut)
  }
  return parseCapture(raw.toString('utf8'), path)
}
