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

/** Days in each month of a non-leap year. */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0

/** Days in `month` (1-12) of `year` in the proleptic Gregorian calendar. */
export const daysInMonth = (year: number, month: number): number =>
  month === 2 && isLeap(year) ? 29 : MONTH_DAYS[month - 1]!

/**
 * Parses any ISO 8601 date-time (`Z`, offsets, fractional seconds, naive = UTC) into epoch
 * microseconds. Returns `undefined` for anything that is not a real instant: fields out of range
 * (month 13, day 45, hour 99 never roll over into another date), or an instant outside the years
 * 1685-2255, where epoch microseconds stop being exact in a double.
 */
export function parseInstant(value: unknown): Micros | undefined {
  if (typeof value !== 'string' || value.length > MAX_INSTANT_LENGTH) return undefined
  const m = ISO_RE.exec(value.trim())
  if (m === null) return undefined
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', tz] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  if (year < 1 || month < 1 || month > 12 || day < 1) return undefined
  if (day > daysInMonth(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  let offsetMinutes = 0
  if (tz !== undefined && tz !== 'Z' && tz !== 'z') {
    const sign = tz[0] === '-' ? -1 : 1
    const digits = tz.slice(1).replace(':', '')
    const oh = Number(digits.slice(0, 2))
    const om = Number(digits.slice(2, 4) || '0')
    if (oh > 23 || om > 59) return undefined
    offsetMinutes = sign * (oh * 60 + om)
  }
  // Date.UTC maps years 0-99 to 1900-1999; those are out of range below anyway.
  if (year < 100) return undefined
  const ms = Date.UTC(year, month - 1, day, hour, minute, second)
  const result = (ms - offsetMinutes * 60_000) * 1000 + Number(`${frac}000000`.slice(0, 6))
  // Beyond ±2^53 µs (before 1685 or after 2255) microseconds are no longer exact.
  return Number.isSafeInteger(result) ? result : undefined
}

/** Longer strings are not instants; bounds the regex work on hostile input. */
const MAX_INSTANT_LENGTH = 64

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
