/**
 * Figures as the gate and the reports print them. A rate compared with a minimum rounds down and one
 * compared with a maximum rounds up, so a printed figure never looks as if it met a threshold it misses.
 */
export function percent(x: number, round: 'down' | 'up' | 'nearest' = 'nearest'): string {
  // Thousandths of a percent; the nudge stops 0.005 * 1e5 = 500.00000000000006 rounding up a step.
  const scaled = x * 100_000
  const whole =
    round === 'down'
      ? Math.floor(scaled + 1e-6)
      : round === 'up'
        ? Math.ceil(scaled - 1e-6)
        : Math.round(scaled)
  return `${whole / 1000} %`
}

/** An integer with its thousands grouped by spaces: `1 000`. */
export function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ')
}

/** A count and its noun, in the plural unless the count is one: `1 sweep`, `1 000 sweeps`. */
export function plural(n: number, noun: string): string {
  return `${count(n)} ${n === 1 ? noun : `${noun}s`}`
}
