/**
 * Numeric coercion for the fields the plugin sends as strings (CONTRACT.md §1):
 * `"340.5"` → 340.5, `"57"` → 57, empty or unparsable → null.
 */
export function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'string') {
    const trimmed = value.trim()
    if (trimmed === '') return null
    const n = Number(trimmed)
    return Number.isFinite(n) ? n : null
  }
  if (typeof value === 'boolean') return value ? 1 : 0
  return null
}

/** Like {@link toNumber} for integer columns: truncates toward zero as Python's `int(float(x))`. */
export function toInteger(value: unknown): number | null {
  const n = toNumber(value)
  return n === null ? null : Math.trunc(n)
}

/** Text fields: strings pass, numbers are printed, everything else is null. */
export function toText(value: unknown): string | null {
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return null
}
