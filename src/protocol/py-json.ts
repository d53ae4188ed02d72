import { parse, stringify } from 'lossless-json'
import { storableText } from './json-bounds.ts'

/**
 * JSON as the legacy Python tracker reads and writes it (`json.loads` / `json.dumps`), for the
 * JSONB payloads both trackers store (CONTRACT.md §8: `character_stats.stats_data`,
 * `combat_stats.lifetime`, `combat_stats_sessions.data`). JavaScript's JSON cannot tell `105.0`
 * from `105` nor keep an integer past 2^53; Python keeps both, and PostgreSQL's `numeric` inside
 * `jsonb` keeps the scale (`105.0` stays `105.0`), so the stored rows differ unless numbers keep
 * Python's int/float class. Only the low-rate frame types go through here.
 */

/** A Python `float`: a double that stays a float when its value is integral (`105.0`). */
export class PyFloat {
  readonly value: number
  constructor(value: number) {
    this.value = value
  }
}

/** A Python number: `int` (arbitrary precision) or `float`. */
export type PyNumber = bigint | PyFloat

/** A JSON value as `json.loads` returns it, with Python numbers; objects have no prototype. */
export type PyValue = null | boolean | string | PyNumber | PyValue[] | { [key: string]: PyValue }

export const isPyNumber = (v: unknown): v is PyNumber => typeof v === 'bigint' || v instanceof PyFloat

/** CPython's `sys.int_info.default_max_str_digits`: `json.loads` refuses longer ints. */
export const MAX_INT_DIGITS = 4300

/** `json.loads`' rule: a lexeme with a fraction or an exponent is a float, any other an int. */
function parseNumber(lexeme: string): PyNumber {
  if (/[.eE]/.test(lexeme)) return new PyFloat(Number(lexeme))
  // Also keeps BigInt's parse, superlinear in the digits, off a hostile 8 MiB number.
  const digits = lexeme.length - (lexeme.startsWith('-') ? 1 : 0)
  if (digits > MAX_INT_DIGITS) throw new SyntaxError(`int of over ${MAX_INT_DIGITS} digits`)
  return BigInt(lexeme)
}

/** A number `json.dumps` cannot write as JSON (`Infinity`), so the value cannot be stored. */
export class NotStorableNumber extends Error {}

/**
 * Parses JSON text as `json.loads` does: ints exact, floats as doubles kept as floats, a repeated
 * key keeps its last value. Text is made storable on the way (NUL removed, lone surrogates
 * replaced: see {@link storableText}); throws SyntaxError on invalid JSON or an int `json.loads`
 * refuses (over {@link MAX_INT_DIGITS} digits) and {@link NotStorableNumber} on a float outside the
 * double range (`1e400`).
 * The caller bounds the nesting first: the parser recurses.
 */
export function parsePyJson(text: string): PyValue {
  const value = parse(text, null, { parseNumber, onDuplicateKey: ({ newValue }) => newValue })
  return storable(value)
}

function storable(value: unknown): PyValue {
  if (typeof value === 'string') return storableText(value)
  if (value instanceof PyFloat && !Number.isFinite(value.value))
    throw new NotStorableNumber(String(value.value))
  if (typeof value !== 'object' || value === null || value instanceof PyFloat) return value as PyValue
  if (Array.isArray(value)) return value.map(storable)
  const out = Object.create(null) as Record<string, PyValue>
  for (const key of Object.keys(value))
    out[storableText(key)] = storable((value as Record<string, unknown>)[key])
  return out
}

/**
 * Python's `repr(float)`, which `json.dumps` writes: the shortest digits that round-trip (the
 * same digits as JavaScript's), in fixed notation with at least one decimal (`105.0`, `0.0001`)
 * unless the decimal point falls before -4 or after 16 places (`1e-05`, `1e+16`, `2.5e-07`).
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN'
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity'
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0'
  const sign = x < 0 ? '-' : ''
  const [mantissa = '', exponent = '0'] = Math.abs(x).toExponential().split('e')
  const digits = mantissa.replace('.', '')
  const exp = Number(exponent)
  // CPython's format_float_short, mode 'r': x = 0.<digits> × 10^point.
  const point = exp + 1
  if (point <= -4 || point > 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
  }
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
}

const PY_FLOAT = {
  test: (v: unknown) => v instanceof PyFloat,
  stringify: (v: unknown) => pyFloatRepr((v as PyFloat).value),
}

/**
 * The JSON text `json.dumps` writes for a value (separators aside, which `jsonb` does not keep):
 * ints exact, floats as {@link pyFloatRepr}. Throws {@link NotStorableNumber} for a non-finite float.
 */
export function stringifyPyJson(value: PyValue): string {
  try {
    return stringify(value, null, undefined, [PY_FLOAT]) as string
  } catch (err) {
    // lossless-json refuses a stringifier output that is not a JSON number: NaN or ±Infinity.
    throw new NotStorableNumber('non-finite float', { cause: err })
  }
}

/** `JSON.rawJSON` (Node 24; not yet in TypeScript's lib): a value `JSON.stringify` writes verbatim. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON

/**
 * A copy of a value for `JSON.stringify` (and so for fastify's replies) in which every number is
 * written as Python writes it: the int's digits, the float's repr. A route serving JSONB read this
 * way answers with the same numbers, byte for byte, as the legacy tracker does.
 */
export function toWireValue(value: PyValue): unknown {
  if (typeof value === 'bigint') return rawJSON(value.toString())
  if (value instanceof PyFloat) return rawJSON(pyFloatRepr(value.value))
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return value.map(toWireValue)
  const out = Object.create(null) as Record<string, unknown>
  for (const key of Object.keys(value)) out[key] = toWireValue(value[key] as PyValue)
  return out
}
