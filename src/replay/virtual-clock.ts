import type { Clock } from '../protocol/time.ts'

/** A clock that only moves when told to, and never backwards: the tracker's time during a replay. */
export class VirtualClock implements Clock {
  #now: number

  constructor(startMs: number) {
    this.#now = startMs
  }

  now(): number {
    return this.#now
  }

  /** Moves to `ms` if that is later than now (captures can hold equal or, across connections, skewed times). */
  set(ms: number): void {
    if (ms > this.#now) this.#now = ms
  }

  advance(ms: number): void {
    this.#now += Math.max(0, ms)
  }
}
