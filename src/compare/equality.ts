import { parseInstant } from '../protocol/time.ts'

/** Text that looks like an ISO 8601 instant (`2026-11-22T08:00:00…` or with a space). */
export const INSTANT_SHAPE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/

/** An instant in epoch milliseconds (microsecond fraction kept), from ISO text or a Date. */
export function instantMs(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime()
  if (typeof value !== 'string' || !INSTANT_SHAPE.test(value)) return undefined
  const micros = parseInstant(value)
  return micros === undefined ? undefined : micros / 1000
}

/**
 * The engine's one notion of equality (issue 9 §2): numbers by value (`105.0` and `105` are the
 * same JSON number), instants by the instant they name, objects by their keys, arrays in order.
 * Tolerances are not applied here: they belong to a field's rule (`compare/rules.json`).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b))
  if (typeof a === 'string' || typeof b === 'string' || a instanceof Date || b instanceof Date) {
    const ta = instantMs(a)
    return ta !== undefined && ta === instantMs(b)
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((v, i) => sameJson(v, bb[i]))
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  )
}
