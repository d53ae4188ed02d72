/**
 * How pydantic v2 (lax mode, which FastAPI uses for query and path parameters) reads text, where
 * the tracker must answer as the Python primary does (CONTRACT.md §1).
 */

import { daysInMonth } from './time.ts'

// Python's int(): ASCII digits, one optional sign, single underscores between digits; pydantic also
// takes a fraction made only of zeros ("16.0"). No exponent, no hex, no "inf"/"nan".
const LAX_INT_RE = /^[+-]?\d+(?:_\d+)*(?:\.0+)?$/

/** pydantic refuses longer integer text (as `int_parsing_size`; here it is plain `int_parsing`). */
const MAX_INT_LENGTH = 4300

/**
 * Parses a query value as pydantic's lax `int` does: surrounding whitespace ignored, `"+16"`,
 * `"1_000"`, `"16.0"` and `"-0"` accepted; `"1e12"`, `"0x10"`, `"1.5"`, `"Infinity"`, `"NaN"` and `""`
 * refused (`undefined`). Python's integers are unbounded, so a value past the range of a double is
 * still an integer: it comes back as ±`Number.MAX_VALUE` (Ajv takes no Infinity as an integer) for a
 * bound to refuse, as pydantic does.
 */
export function parseLaxInteger(text: string): number | undefined {
  const trimmed = text.trim()
  if (trimmed.length > MAX_INT_LENGTH || !LAX_INT_RE.test(trimmed)) return undefined
  const n = Number(trimmed.replaceAll('_', '').replace(/\.0+$/, ''))
  if (!Number.isFinite(n)) return n > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE
  // Python has no negative zero.
  return n === 0 ? 0 : n
}

const DIGITS_RE = /^\d+$/

/**
 * Why text is not a date-time, in the words pydantic (speedate) uses for `datetime_from_date_parsing`:
 * it reports the first fault of the leading `YYYY-MM-DD`, or, when that date is sound, that more
 * follows it which is not a valid time. Only meaningful for text already refused as an instant.
 */
export function datetimeParseError(text: string): string {
  if (text.length < 10) return 'input is too short'
  if (!DIGITS_RE.test(text.slice(0, 4))) return 'invalid character in year'
  if (text[4] !== '-') return 'invalid date separator, expected `-`'
  if (!DIGITS_RE.test(text.slice(5, 7))) return 'invalid character in month'
  if (text[7] !== '-') return 'invalid date separator, expected `-`'
  if (!DIGITS_RE.test(text.slice(8, 10))) return 'invalid character in day'
  const year = Number(text.slice(0, 4))
  const month = Number(text.slice(5, 7))
  const day = Number(text.slice(8, 10))
  if (month < 1 || month > 12) return 'month value is outside expected range of 1-12'
  if (day < 1 || day > daysInMonth(year, month)) return 'day value is outside expected range'
  // pydantic takes these; parseInstant refuses them (see there), so say so rather than blame the time.
  if (year < 1685 || year > 2255) return 'year is outside the range of exact microseconds (about 1685-2255)'
  return 'unexpected extra characters at the end of the input'
}
