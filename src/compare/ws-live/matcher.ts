import { summarize } from '../../util/quantile.ts'
import type { DiffClass, Difference, TriagedDifference } from '../types.ts'
import { diffJson, identityOf, kinOf, labelOf, messageType, own, triaged } from './identity.ts'
import type {
  Blind,
  LiveLag,
  LiveTypeCount,
  Received,
  Side,
  SubscribeCheck,
  WindowSnapshot,
} from './types.ts'
import { SIDES } from './types.ts'

/** Identities of messages reported missing, kept this long so a late copy is lag, not an extra. */
const LATE_MEMORY_MS = 60_000
const LATE_MEMORY_MAX = 10_000

/**
 * Pairing across a window (pure): the two firehoses message by message, and each side's subscribed
 * socket against its own firehose, so lag and missed messages are told apart from field mismatches.
 */

interface MatchOutcome {
  pairs: { a: Received; b: Received }[]
  /** Settled, the other side never had them: missing (A only) and extra (B only). */
  onlyA: Received[]
  onlyB: Received[]
  /** Within the margin of the cut and unpaired: carried to the next window. */
  behindA: Received[]
  behindB: Received[]
  /** Unpaired while the other side's socket was blind. */
  unseenA: Received[]
  unseenB: Received[]
  /** Late copies of messages an earlier window reported missing: B's receive time minus A's, ms. */
  late: number[]
}

const isBlind = (blind: readonly Blind[], from: number, to: number): boolean =>
  blind.some((b) => b.from <= to && b.to >= from)

/**
 * Pairs two streams of one window (A the reference, B the candidate), carrying what is still
 * within the lag margin of the cut to the next window, so a message near the edge is lag, and
 * only a message the other side never had within the margin is missing.
 */
export class StreamMatcher {
  #pendingA: Received[] = []
  #pendingB: Received[] = []
  /** Identities reported A-only (resp. B-only), with A's (resp. B's) receive time. */
  readonly #reportedA = new Map<string, number>()
  readonly #reportedB = new Map<string, number>()
  readonly #marginMs: number

  constructor(marginMs: number) {
    this.#marginMs = marginMs
  }

  match(
    newA: readonly Received[],
    newB: readonly Received[],
    cut: number,
    blind: { a: Blind[]; b: Blind[] },
  ) {
    const margin = this.#marginMs
    const a = [...this.#pendingA, ...newA]
    const b = [...this.#pendingB, ...newB]
    const out: MatchOutcome = {
      pairs: [],
      onlyA: [],
      onlyB: [],
      behindA: [],
      behindB: [],
      unseenA: [],
      unseenB: [],
      late: [],
    }
    // Same identity, in arrival order.
    const byId = new Map<string, Received[]>()
    for (const r of b) {
      const q = byId.get(identityOf(r))
      if (q === undefined) byId.set(identityOf(r), [r])
      else q.push(r)
    }
    const used = new Set<Received>()
    const leftA: Received[] = []
    for (const r of a) {
      const m = byId.get(identityOf(r))?.shift()
      if (m === undefined) leftA.push(r)
      else {
        out.pairs.push({ a: r, b: m })
        used.add(m)
      }
    }
    // The same frame with a changed timestamp or content: same type and character, close in time,
    // at least one of them past the margin (two fresh ones may still find their own partners).
    const settled = cut - margin
    const kin = new Map<string, Received[]>()
    for (const r of b) {
      if (used.has(r)) continue
      const q = kin.get(kinOf(r))
      if (q === undefined) kin.set(kinOf(r), [r])
      else q.push(r)
    }
    const restA: Received[] = []
    for (const r of leftA) {
      const q = kin.get(kinOf(r))
      const i =
        q?.findIndex((m) => Math.abs(m.at - r.at) <= margin && (m.at < settled || r.at < settled)) ?? -1
      if (i < 0) restA.push(r)
      else {
        const m = q!.splice(i, 1)[0]!
        out.pairs.push({ a: r, b: m })
        used.add(m)
      }
    }
    const restB = b.filter((r) => !used.has(r))
    const classify = (r: Received, side: 'A' | 'B'): void => {
      const otherReported = side === 'A' ? this.#reportedB : this.#reportedA
      const reportedAt = otherReported.get(identityOf(r))
      if (reportedAt !== undefined) {
        otherReported.delete(identityOf(r))
        out.late.push(side === 'B' ? r.at - reportedAt : reportedAt - r.at)
      } else if (r.at >= settled) (side === 'A' ? out.behindA : out.behindB).push(r)
      else if (isBlind(side === 'A' ? blind.b : blind.a, r.at - margin, r.at + margin)) {
        ;(side === 'A' ? out.unseenA : out.unseenB).push(r)
      } else {
        ;(side === 'A' ? out.onlyA : out.onlyB).push(r)
        ;(side === 'A' ? this.#reportedA : this.#reportedB).set(identityOf(r), r.at)
      }
    }
    for (const r of restA) classify(r, 'A')
    for (const r of restB) classify(r, 'B')
    this.#pendingA = out.behindA
    this.#pendingB = out.behindB
    for (const memory of [this.#reportedA, this.#reportedB]) {
      for (const [id, at] of memory) {
        if (at >= cut - LATE_MEMORY_MS && memory.size <= LATE_MEMORY_MAX) break
        memory.delete(id)
      }
    }
    return out
  }
}

// ---- one window compared (pure) ----

export interface WindowComparison {
  differences: TriagedDifference[]
  /** Per signature, how many things were compared (the cluster rate's denominator). */
  observations: Map<string, number>
  paired: number
  compared: number
  delaysMs: number[]
  liveLag: LiveLag
  types: LiveTypeCount[]
  typedTelemetry: Record<Side, number>
  subscribe: { primary: SubscribeCheck; shadow: SubscribeCheck }
  /** A landblock whose dungeon_map both sides delivered in this window, to probe. */
  landblock: string | undefined
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>()
  for (const t of items) m.set(key(t), (m.get(key(t)) ?? 0) + 1)
  return m
}

const typeOf = (r: Received): string => messageType(r.msg)

/** A message one side had and the other not: the message itself is the evidence, on its side. */
function entityDiff(
  path: string,
  signature: string,
  cls: DiffClass,
  r: Received,
  detail: string,
): Difference {
  const d: Difference = { path, signature, class: cls, detail }
  if (cls === 'missing_entity') d.primary = r.msg
  else d.shadow = r.msg
  return d
}

/**
 * The comparison of the four streams, window after window: primary against shadow firehose, and
 * each side's subscribed socket against its own firehose. Keeps what is carried between windows.
 */
export class LiveComparator {
  readonly #marginMs: number
  readonly #subscribed: Set<string>
  readonly #cross: StreamMatcher
  readonly #sub: Record<Side, StreamMatcher>

  constructor(options: { lagMarginMs: number; subscribeTypes: readonly string[] }) {
    this.#marginMs = options.lagMarginMs
    this.#subscribed = new Set(options.subscribeTypes)
    this.#cross = new StreamMatcher(options.lagMarginMs)
    this.#sub = {
      primary: new StreamMatcher(options.lagMarginMs),
      shadow: new StreamMatcher(options.lagMarginMs),
    }
  }

  compare(w: WindowSnapshot): WindowComparison {
    const differences: TriagedDifference[] = []
    const observations = new Map<string, number>()
    const observe = (sig: string, n = 1) => observations.set(sig, (observations.get(sig) ?? 0) + n)
    const p = w.primary.firehose
    const s = w.shadow.firehose
    const m = this.#cross.match(p.items, s.items, w.cut, { a: p.blind, b: s.blind })

    let landblock: string | undefined
    const delaysMs: number[] = []
    for (const { a, b } of m.pairs) {
      const type = typeOf(a)
      delaysMs.push(b.at - a.at)
      observe(`${type}[]`)
      const found: Difference[] = []
      diffJson(a.msg, b.msg, `${type}[${labelOf(a)}]`, `${type}[]`, found)
      for (const d of found) differences.push(triaged(d, 'mismatch'))
      const lb = own(a.msg, 'landblock')
      if (type === 'dungeon_map' && typeof lb === 'string' && own(a.msg, 'error') === undefined)
        landblock = lb
    }
    const entity = (r: Received, cls: DiffClass, status: 'mismatch' | 'explained', detail: string) => {
      const type = typeOf(r)
      observe(`${type}[]`)
      differences.push(triaged(entityDiff(`${type}[${labelOf(r)}]`, `${type}[]`, cls, r, detail), status))
    }
    for (const r of m.onlyA) entity(r, 'missing_entity', 'mismatch', 'the shadow never sent it')
    for (const r of m.onlyB) entity(r, 'extra_entity', 'mismatch', 'the primary never sent it')
    const waited = (r: Received) => `lag: ${((w.cut - r.at) / 1000).toFixed(3)} s at the window's end`
    for (const r of m.behindA) entity(r, 'missing_entity', 'explained', waited(r))
    for (const r of m.behindB) entity(r, 'extra_entity', 'explained', waited(r))
    for (const r of m.unseenA) entity(r, 'missing_entity', 'explained', "lag: the shadow's socket was blind")
    for (const r of m.unseenB) entity(r, 'extra_entity', 'explained', "lag: the primary's socket was blind")

    // Per-type counts of what each side received in this window, and what became of it.
    const counts = { primary: countBy(p.items, typeOf), shadow: countBy(s.items, typeOf) }
    const outcome = (list: readonly Received[]) => countBy(list, typeOf)
    const paired = countBy(
      m.pairs.map((x) => x.a),
      typeOf,
    )
    const missing = outcome(m.onlyA)
    const extra = outcome(m.onlyB)
    const lagged = outcome([...m.behindA, ...m.behindB, ...m.unseenA, ...m.unseenB])
    const allTypes = [
      ...new Set([...counts.primary.keys(), ...counts.shadow.keys(), ...missing.keys(), ...extra.keys()]),
    ]
    const types: LiveTypeCount[] = allTypes.sort().map((type) => ({
      type,
      primary: counts.primary.get(type) ?? 0,
      shadow: counts.shadow.get(type) ?? 0,
      paired: paired.get(type) ?? 0,
      missing: missing.get(type) ?? 0,
      extra: extra.get(type) ?? 0,
      lag: lagged.get(type) ?? 0,
    }))
    observe('types[]', types.length)
    for (const t of types) {
      if (t.missing > 0 && t.shadow === 0) {
        differences.push(
          triaged(
            {
              path: `types[${t.type}]`,
              signature: 'types[]',
              class: 'missing_entity',
              primary: t.primary,
              shadow: 0,
              detail: `no ${t.type} message on the shadow in this window`,
            },
            'mismatch',
          ),
        )
      } else if (t.extra > 0 && t.primary === 0) {
        differences.push(
          triaged(
            {
              path: `types[${t.type}]`,
              signature: 'types[]',
              class: 'extra_entity',
              primary: 0,
              shadow: t.shadow,
              detail: `no ${t.type} message on the primary in this window`,
            },
            'mismatch',
          ),
        )
      }
    }

    const typedTelemetry = {
      primary: p.items.filter((r) => own(r.msg, 'type') === 'telemetry').length,
      shadow: s.items.filter((r) => own(r.msg, 'type') === 'telemetry').length,
    }

    const subscribe = this.#compareSubscribe(w, differences, observe)

    const behind = [...m.behindA, ...m.behindB]
    const sorted = [...delaysMs, ...m.late]
    const stats = summarize(sorted)
    const sec = (ms: number | null) => (ms === null ? null : ms / 1000)
    const liveLag: LiveLag = {
      samples: stats.samples,
      p50Seconds: sec(stats.p50),
      maxSeconds: sec(stats.max),
      minSeconds: sec(sorted[0] ?? null),
      behind: { shadow: m.behindA.length, primary: m.behindB.length },
      behindSeconds:
        behind.length === 0 ? null : (w.cut - behind.reduce((t, r) => Math.min(t, r.at), w.cut)) / 1000,
      unseen: { shadow: m.unseenA.length, primary: m.unseenB.length },
      late: m.late.length,
      marginSeconds: this.#marginMs / 1000,
    }
    return {
      differences,
      observations,
      paired: m.pairs.length,
      compared: m.pairs.length + m.onlyA.length + m.onlyB.length,
      delaysMs: sorted,
      liveLag,
      types,
      typedTelemetry,
      subscribe,
      landblock,
    }
  }

  /**
   * The subscribed socket of each side against its firehose. A side's own failures are counted in
   * its check; the shadow's mismatches are only what it does beyond the primary (the legacy's
   * behaviour is the authority, CONTRACT.md preamble).
   */
  #compareSubscribe(
    w: WindowSnapshot,
    differences: TriagedDifference[],
    observe: (sig: string, n?: number) => void,
  ): { primary: SubscribeCheck; shadow: SubscribeCheck } {
    const per = {} as Record<
      Side,
      { check: SubscribeCheck; violations: Received[]; missed: Received[]; extra: Received[] }
    >
    for (const side of SIDES) {
      const { firehose, subscribed } = w[side]
      const kept = subscribed.items.filter((r) => this.#subscribed.has(typeOf(r)))
      const violations = subscribed.items.filter((r) => !this.#subscribed.has(typeOf(r)))
      const wanted = firehose.items.filter((r) => this.#subscribed.has(typeOf(r)))
      const m = this.#sub[side].match(wanted, kept, w.cut, { a: firehose.blind, b: subscribed.blind })
      per[side] = {
        violations,
        missed: m.onlyA,
        extra: m.onlyB,
        check: {
          received: subscribed.items.length,
          violations: [...countBy(violations, typeOf)].map(([type, count]) => ({ type, count })),
          missed: m.onlyA.length,
          extra: m.onlyB.length,
          lag: m.behindA.length + m.behindB.length + m.unseenA.length + m.unseenB.length,
        },
      }
      for (const r of subscribed.items) observe(`subscribe.${typeOf(r)}[]`)
    }
    const beyondPrimary = (
      list: readonly Received[],
      primaryList: readonly Received[],
      cls: DiffClass,
      detail: string,
    ): void => {
      const allowance = countBy(primaryList, typeOf)
      for (const r of list) {
        const type = typeOf(r)
        const left = allowance.get(type) ?? 0
        if (left > 0) {
          allowance.set(type, left - 1)
          continue
        }
        const d = entityDiff(`subscribe.${type}[${labelOf(r)}]`, `subscribe.${type}[]`, cls, r, detail)
        differences.push(triaged(d, 'mismatch'))
      }
    }
    const ps = per.primary
    const ss = per.shadow
    beyondPrimary(ss.violations, ps.violations, 'extra_entity', 'sent to a socket not subscribed to its type')
    beyondPrimary(
      ss.missed,
      ps.missed,
      'missing_entity',
      'the subscribed socket missed a message the firehose had',
    )
    beyondPrimary(
      ss.extra,
      ps.extra,
      'extra_entity',
      'the subscribed socket had a message the firehose did not',
    )
    return { primary: ps.check, shadow: ss.check }
  }
}
