/**
 * The vocabulary of the comparison engine. A *difference* is one place where the shadow's answer
 * departs from the primary's; its *class* says how, its *status* says what the engine concluded.
 */

/** How the shadow departs from the primary (issue 4 §2). */
export type DiffClass =
  | 'missing_entity'
  | 'extra_entity'
  | 'missing_field'
  | 'extra_field'
  | 'type_change'
  | 'format'
  | 'value'
  | 'order'

export const DIFF_CLASSES: readonly DiffClass[] = [
  'missing_entity',
  'extra_entity',
  'missing_field',
  'extra_field',
  'type_change',
  'format',
  'value',
  'order',
]

/**
 * What the engine concluded about a difference:
 * - `mismatch`: a real divergence;
 * - `explained`: the shadow equals the primary's later read, or lies between the two reads;
 * - `noise`: unexplained, but the field changed between the primary's reads at least as often.
 */
export type DiffStatus = 'mismatch' | 'explained' | 'noise'

export type Severity = 'hard' | 'soft'

/** One classified difference between a primary and a shadow document. */
export interface Difference {
  /** Concrete location, e.g. `players[Larsson].kills`; `` for the whole document. */
  path: string
  /** The path with entity keys and indexes replaced by `[]`, e.g. `players[].kills`: the cluster key. */
  signature: string
  class: DiffClass
  primary?: unknown
  shadow?: unknown
  detail?: string
}

/** A difference after waivers and noise cancellation. */
export interface TriagedDifference extends Difference {
  status: DiffStatus
  severity: Severity
  /** The primary's value at the second read, for the side-by-side evidence. */
  primaryAfter?: unknown
  /** The endpoint instance it came from, e.g. `/stats/Larsson`. */
  url?: string
}
