import { isPyNumber, PyFloat, type PyNumber, type PyValue } from '../protocol/py-json.ts'

/**
 * Leaf-wise arithmetic on combat stats (CONTRACT.md §6): nested objects of numbers, summed
 * through every level with Python's number rules, as the legacy tracker sums them: int ± int
 * stays an exact int, anything with a float is a float. Pure, so the writer and tests share
 * one definition.
 */
export type StatsTree = { [key: string]: PyNumber | StatsTree }

const isTree = (v: unknown): v is StatsTree =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat)

/** Keeps only numbers and nested objects of numbers (booleans are not numbers here); the rest is not summable. */
export function toStatsTree(value: PyValue | undefined): StatsTree {
  const out = Object.create(null) as StatsTree
  if (!isTree(value)) return out
  for (const k of Object.keys(value)) {
    const v = value[k]
    if (isPyNumber(v)) out[k] = v
    else if (isTree(v)) out[k] = toStatsTree(v)
  }
  return out
}

const toFloat = (n: PyNumber): number => (typeof n === 'bigint' ? Number(n) : n.value)

/** Python's `a + sign * b` for `sign` = ±1. */
function addNumbers(a: PyNumber, b: PyNumber, sign: 1 | -1): PyNumber {
  if (typeof a === 'bigint' && typeof b === 'bigint') return sign === 1 ? a + b : a - b
  // An int meets a float: Python converts the int (correctly rounded, as Number(bigint) is).
  return new PyFloat(toFloat(a) + sign * toFloat(b))
}

/** `a + sign * b`, leaf-wise; a leaf missing on one side counts as the int 0. */
export function addTrees(a: StatsTree, b: StatsTree, sign: 1 | -1 = 1): StatsTree {
  const out = Object.assign(Object.create(null), a) as StatsTree
  for (const k of Object.keys(b)) {
    const av = out[k]
    const bv = b[k] as PyNumber | StatsTree
    if (isTree(bv)) out[k] = addTrees(isTree(av) ? av : (Object.create(null) as StatsTree), bv, sign)
    else out[k] = addNumbers(av !== undefined && !isTree(av) ? av : 0n, bv, sign)
  }
  return out
}
