/** The `q` quantile (0..1) of an ascending array, nearest rank; undefined when empty. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/** p50/p95/p99/max of unsorted samples (sorted in place), nulls when there are none. */
export function summarize(samples: number[]): {
  samples: number
  p50: number | null
  p95: number | null
  p99: number | null
  max: number | null
} {
  samples.sort((a, b) => a - b)
  const at = (q: number) => quantile(samples, q) ?? null
  return { samples: samples.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: samples.at(-1) ?? null }
}
