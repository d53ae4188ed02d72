/**
 * Leaf-wise arithmetic on combat stats (CONTRACT.md §6): nested objects of numbers, summed
 * through every level. Pure, so the writer and tests share one definition.
 */
export type StatsTree = { [key: string]: number | StatsTree }

const isTree = (v: unknown): v is StatsTree => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Keeps only numbers and nested objects of numbers; anything else is not summable. */
export function toStatsTree(value: unknown): StatsTree {
  const out: StatsTree = {}
  if (!isTree(value)) return out
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[k] = v
    else if (isTree(v)) out[k] = toStatsTree(v)
  }
  return out
}

/** `a + sign * b`, leaf-wise; a leaf missing on one side counts as 0. */
export function addTrees(a: StatsTree, b: StatsTree, sign = 1): StatsTree {
  const out: StatsTree = { ...a }
  for (const [k, bv] of Object.entries(b)) {
    const av = out[k]
    if (typeof bv === 'number') out[k] = (typeof av === 'number' ? av : 0) + sign * bv
    else out[k] = addTrees(isTree(av) ? av : {}, bv, sign)
  }
  return out
}
