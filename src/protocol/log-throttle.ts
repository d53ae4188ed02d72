/** How often a throttled log record may repeat for one key. */
export const LOG_INTERVAL_MS = 10_000

/**
 * "Log once per key per interval" for events that can arrive thousands of times a second (bad
 * frames, refused writes, caught faults): every event is noted, and {@link note} answers how many
 * were noted for that key since the last time it said to log. Keys are fixed names of ours.
 */
export class LogThrottle {
  readonly #intervalMs: number
  readonly #keys = new Map<string, { at: number; since: number }>()

  constructor(intervalMs = LOG_INTERVAL_MS) {
    this.#intervalMs = intervalMs
  }

  /** Notes one event for `key`; returns the count to log now, or 0 when it is not yet due. */
  note(key: string, now = Date.now()): number {
    let entry = this.#keys.get(key)
    if (entry === undefined) {
      entry = { at: Number.NEGATIVE_INFINITY, since: 0 }
      this.#keys.set(key, entry)
    }
    entry.since += 1
    if (now - entry.at < this.#intervalMs) return 0
    const count = entry.since
    entry.at = now
    entry.since = 0
    return count
  }
}
