/**
 * The bus's message body: the accepted frames of one type gathered in one publish window, each
 * as the plugin sent it, with the receive instant and what its origin derived from the state
 * before it (the kills delta, the session). Length-prefixed binary, so frame text is neither
 * escaped nor re-parsed on the way: every instance decodes the frame itself, exactly as the
 * origin did.
 *
 * Per entry: f64 receivedAt (µs) · i32 killsDelta (-1: none) · u8 session tag (0 null, 1 text)
 * · u16 session length · session UTF-8 · u32 text length · text UTF-8.
 */

/** What the origin derived from its state before the frame: the writer needs it, not the state. */
export interface FrameMeta {
  /** Telemetry: the positive kills difference within the session (CONTRACT.md §6). */
  killsDelta: number | null
  /** Rares and combat stats: the session they count towards. */
  session: string | null
}

export interface BusFrame {
  receivedAt: number
  text: string
  meta: FrameMeta
}

const FIXED = 8 + 4 + 1 + 2 + 4

/** Upper bound of an entry's encoded size, for the publish window's byte budget. */
export const entryBytes = (f: BusFrame): number =>
  FIXED + 3 * f.text.length + (f.meta.session === null ? 0 : 3 * f.meta.session.length)

export function encodeBatch(frames: readonly BusFrame[]): Uint8Array {
  let size = 0
  for (const f of frames) size += entryBytes(f)
  const buf = Buffer.allocUnsafe(size)
  let at = 0
  for (const f of frames) {
    buf.writeDoubleLE(f.receivedAt, at)
    buf.writeInt32LE(f.meta.killsDelta ?? -1, at + 8)
    const session = f.meta.session
    buf.writeUInt8(session === null ? 0 : 1, at + 12)
    const sessionLen = session === null ? 0 : buf.write(session, at + 15, 'utf8')
    buf.writeUInt16LE(sessionLen, at + 13)
    at += 15 + sessionLen
    const textLen = buf.write(f.text, at + 4, 'utf8')
    buf.writeUInt32LE(textLen, at)
    at += 4 + textLen
  }
  return buf.subarray(0, at)
}

/** Decodes a batch; throws a RangeError on a truncated or corrupt body. */
export function decodeBatch(data: Uint8Array): BusFrame[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const out: BusFrame[] = []
  let at = 0
  while (at < buf.length) {
    const receivedAt = buf.readDoubleLE(at)
    const delta = buf.readInt32LE(at + 8)
    const tag = buf.readUInt8(at + 12)
    const sessionLen = buf.readUInt16LE(at + 13)
    at += 15
    if (at + sessionLen > buf.length) throw new RangeError('bus batch truncated')
    const session = tag === 0 ? null : buf.toString('utf8', at, at + sessionLen)
    at += sessionLen
    const textLen = buf.readUInt32LE(at)
    at += 4
    if (at + textLen > buf.length) throw new RangeError('bus batch truncated')
    out.push({
      receivedAt,
      text: buf.toString('utf8', at, at + textLen),
      meta: { killsDelta: delta < 0 ? null : delta, session },
    })
    at += textLen
  }
  return out
}
