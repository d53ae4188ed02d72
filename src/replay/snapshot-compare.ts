import { formatInstant, parseInstant } from '../protocol/time.ts'
import type { RecordedResponse } from '../tee/capture-format.ts'

/** One place where a replayed response differs from the recorded one. */
export interface Difference {
  /** JSON path inside the body, `$` for the root, `$status` for the status. */
  path: string
  expected: unknown
  actual: unknown
}

const DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/
const MAX_DIFFERENCES = 25

/**
 * The contract's normalization (CONTRACT.md §1) before an equality check: every ISO 8601 instant in
 * its canonical Python `isoformat()` spelling, numbers to 12 significant digits (float noise between
 * PostgreSQL, Python and V8). Order is kept: list order is part of the contract.
 */
export function normalize(value: unknown): unknown {
  if (typeof value === 'string' && DATETIME.test(value)) {
    const micros = parseInstant(value)
    return micros === undefined ? value : formatInstant(micros)
  }
  if (typeof value === 'number') return Number.isFinite(value) ? Number(value.toPrecision(12)) : value
  if (Array.isArray(value)) return value.map(normalize)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) out[key] = normalize((value as Record<string, unknown>)[key])
    return out
  }
  return value
}

function diff(expected: unknown, actual: unknown, path: string, out: Difference[]): void {
  if (out.length >= MAX_DIFFERENCES) return
  if (Object.is(expected, actual)) return
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) {
      out.push({ path: `${path}.length`, expected: expected.length, actual: actual.length })
    }
    for (let i = 0; i < Math.min(expected.length, actual.length); i++)
      diff(expected[i], actual[i], `${path}[${i}]`, out)
    return
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
  if (isObject(expected) && isObject(actual)) {
    for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      diff(expected[key], actual[key], `${path}.${key}`, out)
    }
    return
  }
  out.push({ path, expected, actual })
}

/**
 * Compares one recorded primary response with the replayed tracker's. This is the single seam where
 * the comparison engine (src/compare, its own issue) replaces the plain deep-equal.
 */
export function compareResponse(expected: RecordedResponse, actual: RecordedResponse): Difference[] {
  const out: Difference[] = []
  if (expected.status !== actual.status)
    out.push({ path: '$status', expected: expected.status, actual: actual.status })
  diff(normalize(expected.body), normalize(actual.body), '$', out)
  return out
}
