import type { TimedDoc } from './triage.ts'

/** Frames kept per kind: 1 000 characters × a minute of 2 s frames. */
const MAX_FRAMES = 30_000

/**
 * The last few reads of every URL on each side (issue 9 §1): what lets the engine pair the shadow's
 * frame with the primary poll that showed it, however the two `/live` caches are phased. `watch`
 * keeps one across sweeps; a single `sweep` starts empty. Bounded by count per URL and by age.
 */
export class ReadHistory {
  readonly #reads = new Map<string, { primary: TimedDoc[]; shadow: TimedDoc[] }>()
  /** The newest frame instant (µs) each side showed per character, by side and kind. */
  readonly #newest = new Map<string, Map<string, { instant: number; at: number }>>()
  /** Copies of frames by side and kind, then `character|instant` (insertion order = age). */
  readonly #frames = new Map<string, Map<string, { at: number; value: Record<string, unknown> }>>()
  readonly #perUrl: number
  readonly #maxAgeMs: number

  constructor(options: { perUrl: number; maxAgeMs: number }) {
    this.#perUrl = options.perUrl
    this.#maxAgeMs = options.maxAgeMs
  }

  /** Earlier reads of `url`, oldest first (copies: later pushes do not change them). */
  of(url: string): { primary: readonly TimedDoc[]; shadow: readonly TimedDoc[] } {
    const r = this.#reads.get(url)
    return r === undefined ? { primary: [], shadow: [] } : { primary: [...r.primary], shadow: [...r.shadow] }
  }

  push(url: string, side: 'primary' | 'shadow', read: TimedDoc): void {
    let r = this.#reads.get(url)
    if (r === undefined) {
      r = { primary: [], shadow: [] }
      this.#reads.set(url, r)
    }
    const list = r[side]
    list.push(read)
    const oldest = read.at - this.#maxAgeMs
    while (list.length > this.#perUrl || (list.length > 0 && list[0]!.at < oldest)) list.shift()
  }

  /** Keeps one side's copy of one frame (the latest read of it wins). */
  keepFrame(
    kind: string,
    key: string,
    at: number,
    value: Record<string, unknown>,
    side: 'primary' | 'shadow' = 'primary',
  ): void {
    let frames = this.#frames.get(`${side}:${kind}`)
    if (frames === undefined) {
      frames = new Map()
      this.#frames.set(`${side}:${kind}`, frames)
    }
    frames.delete(key)
    frames.set(key, { at, value })
    const who = key.slice(0, key.lastIndexOf('|'))
    const instant = Number(key.slice(key.lastIndexOf('|') + 1))
    let newest = this.#newest.get(`${side}:${kind}`)
    if (newest === undefined) {
      newest = new Map()
      this.#newest.set(`${side}:${kind}`, newest)
    }
    if ((newest.get(who)?.instant ?? Number.NEGATIVE_INFINITY) < instant) newest.set(who, { instant, at })
    if (frames.size > MAX_FRAMES) frames.delete(frames.keys().next().value!)
  }

  /** One side's copy of a frame, if a read showed it within the age bound. */
  frame(
    kind: string,
    key: string,
    nowMs: number,
    side: 'primary' | 'shadow' = 'primary',
  ): Record<string, unknown> | undefined {
    const f = this.#frames.get(`${side}:${kind}`)?.get(key)
    return f === undefined || f.at < nowMs - this.#maxAgeMs ? undefined : f.value
  }

  /** The newest frame instant (µs) a side showed for a character within the age bound. */
  newestFrame(
    kind: string,
    character: string,
    nowMs: number,
    side: 'primary' | 'shadow',
  ): number | undefined {
    const f = this.#newest.get(`${side}:${kind}`)?.get(character)
    return f === undefined || f.at < nowMs - this.#maxAgeMs ? undefined : f.instant
  }

  /** Forgets URLs not read since `beforeMs` (characters that went offline), and older frames. */
  prune(beforeMs: number): void {
    for (const newest of this.#newest.values()) {
      for (const [who, f] of newest) if (f.at < beforeMs) newest.delete(who)
    }
    for (const frames of this.#frames.values()) {
      for (const [key, f] of frames) {
        if (f.at >= beforeMs) break
        frames.delete(key)
      }
    }
    for (const [url, r] of this.#reads) {
      const last = Math.max(r.primary.at(-1)?.at ?? 0, r.shadow.at(-1)?.at ?? 0)
      if (last < beforeMs) this.#reads.delete(url)
    }
  }
}
