/** The value at a dotted path (`a.b.c`) of parsed JSON; undefined where any step is missing. */
export function pick(value: unknown, path: string): unknown {
  if (path === '') return value
  let v = value
  for (const key of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined
    v = (v as Record<string, unknown>)[key]
  }
  return v
}
