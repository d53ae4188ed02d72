/**
 * Instants on the wire. Internally an instant is epoch **microseconds** (a safe integer until
 * year 2255), because PostgreSQL and Python keep microseconds and JavaScript's Date keeps only
 * milliseconds; formatting must reproduce Python's `datetime.isoformat()` (CONTRACT.md §1).
 */

/** Epoch microseconds. */
export type Micros = number

/** The source of "now" for everything time-dependent, so a replay can run on virtual time. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/**
 * Parses any ISO 8601 date-time (`Z`, offsets, fractional seconds, naive = UTC) into epoch
 * microseconds. Returns `undefined` for anything unparsable.
 */
export function parseInstant(value: unknown): Micros | undefined {
  if (typeof value !== 'string') return undefined
  const m = ISO_RE.exec(value.trim())
  if (m === null) return undefined
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', tz] = m
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  if (Number.isNaN(ms)) return undefined
  const micros = Number(`${frac}000000`.slice(0, 6))
  let offsetMinutes = 0
  if (tz !== undefined && tz !== 'Z' && tz !== 'z') {
    const sign = tz[0] === '-' ? -1 : 1
    const digits = tz.slice(1).replace(':', '')
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'))
  }
  return (ms - offsetMinutes * 60_000) * 1000 + micros
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/**
 * Formats epoch microseconds as Python's `datetime.isoformat()` does for a UTC-aware value:
 * `2026-11-22T08:10:02+00:00`, with `.ffffff` only when the microseconds are non-zero.
 */
export function formatInstant(micros: Micros): string {
  const ms = Math.floor(micros / 1000)
  const us = micros - Math.floor(micros / 1_000_000) * 1_000_000
  const d = new Date(ms)
  const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(
    d.getUTCHours(),
  )}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  return us === 0 ? `${base}+00:00` : `${base}.${pad(us, 6)}+00:00`
}

/** Milliseconds to microseconds. */
export const msToMicros = (ms: number): Micros => Math.round(ms * 1000)

/**
 * Converts a PostgreSQL `timestamptz` text (as the server prints it with `TimeZone=UTC`,
 * e.g. `2026-11-22 08:10:02.12+00`) into epoch microseconds.
 */
export function parsePgTimestamp(text: string): Micros {
  const micros = parseInstant(text)
  if (micros === undefined) throw new Error(`unparsable timestamptz: ${text}`)
  return micros
}
