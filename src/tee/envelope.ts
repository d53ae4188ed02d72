/**
 * The tee protocol (v1): what the legacy tracker's tee module sends to the mirror receiver.
 * A WebSocket text message holds one or more envelopes, one JSON object per line (NDJSON), so the
 * sender can batch. JSON strings never contain a raw newline, so splitting on `\n` is safe.
 *
 * - `{"k":"hello","s":"<sender session>","v":1}` first on every (re)connect
 * - `{"k":"open","c":<conn>,"t":<ms>}` a plugin connected to the primary
 * - `{"k":"frame","c":<conn>,"t":<ms>,"d":"<raw text frame>"}` one plugin frame, byte for byte
 * - `{"k":"close","c":<conn>,"t":<ms>,"code":<close code>}` the plugin disconnected
 *
 * `t` is the primary's receive time in epoch milliseconds; `c` is unique per sender session.
 */

export const TEE_PROTOCOL_VERSION = 1

export type TeeEnvelope =
  | { k: 'hello'; s: string; v: number }
  | { k: 'open'; c: string; t: number }
  | { k: 'frame'; c: string; t: number; d: string }
  | { k: 'close'; c: string; t: number; code: number }

const connId = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined

const time = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

/** Parses one envelope line; `undefined` for anything malformed (the receiver counts those). */
export function parseEnvelope(line: string): TeeEnvelope | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const o = value as Record<string, unknown>
  if (o.k === 'hello') {
    return typeof o.s === 'string' && o.s !== ''
      ? { k: 'hello', s: o.s, v: typeof o.v === 'number' ? o.v : TEE_PROTOCOL_VERSION }
      : undefined
  }
  const c = connId(o.c)
  const t = time(o.t)
  if (c === undefined || t === undefined) return undefined
  if (o.k === 'open') return { k: 'open', c, t }
  if (o.k === 'frame') return typeof o.d === 'string' ? { k: 'frame', c, t, d: o.d } : undefined
  if (o.k === 'close') return { k: 'close', c, t, code: typeof o.code === 'number' ? o.code : 1000 }
  return undefined
}

/** Splits one WebSocket message into envelope lines (blank lines ignored). */
export function splitEnvelopes(message: string): string[] {
  return message.split('\n').filter((line) => line.trim() !== '')
}

/** Encodes envelopes as one message (what the Python sender does; used by tests and the simulator). */
export function encodeEnvelopes(envelopes: readonly TeeEnvelope[]): string {
  return envelopes.map((e) => JSON.stringify(e)).join('\n')
}
