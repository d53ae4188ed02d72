import { createHash, timingSafeEqual } from 'node:crypto'

/** Constant-time string comparison (hashes first, so lengths leak nothing either). */
export function secretMatches(presented: string | undefined, expected: string | undefined): boolean {
  if (presented === undefined || expected === undefined || expected === '') return false
  const a = createHash('sha256').update(presented).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}
