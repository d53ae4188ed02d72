import { readFile } from 'node:fs/promises'
import { gunzipSync } from 'node:zlib'
import { OverlordError } from '../protocol/errors.ts'
import { CAPTURE_FORMAT, type CaptureEvent, type CaptureHeader, TEE_ERR_CAPTURE } from './format.ts'

/** A capture loaded in memory: header and events in recorded order. */
export interface Capture {
  header: CaptureHeader
  events: CaptureEvent[]
}

/** Parses capture text (pure): the header line first, then one event per line. */
export function parseCapture(text: string, source = 'capture'): Capture {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const events: CaptureEvent[] = []
  let header: CaptureHeader | undefined
  lines.forEach((line, i) => {
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (cause) {
      throw new OverlordError(TEE_ERR_CAPTURE, `${source}:${i + 1}: not JSON`, { cause })
    }
    const kind = (value as { kind?: unknown }).kind
    if (i === 0) {
      if (kind !== 'header' || (value as CaptureHeader).format !== CAPTURE_FORMAT) {
        throw new OverlordError(TEE_ERR_CAPTURE, `${source}: no ${CAPTURE_FORMAT} header`)
      }
      header = value as CaptureHeader
      return
    }
    if (kind === 'open' || kind === 'frame' || kind === 'close' || kind === 'snapshot' || kind === 'end') {
      events.push(value as CaptureEvent)
    } else {
      throw new OverlordError(TEE_ERR_CAPTURE, `${source}:${i + 1}: unknown event kind ${String(kind)}`)
    }
  })
  if (header === undefined) throw new OverlordError(TEE_ERR_CAPTURE, `${source}: empty capture`)
  return { header, events }
}

/** Reads a capture file, gzipped or not (detected by its magic bytes, not its name). */
export async function readCapture(path: string): Promise<Capture> {
  const raw = await readFile(path)
  const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw).toString('utf8') : raw.toString('utf8')
  return parseCapture(text, path)
}
