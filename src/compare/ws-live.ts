import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { coerceError, ERR } from '../protocol/errors.ts'
import type { EndpointReport, SweepError } from './sweep.ts'
import { LiveComparator } from './ws-live/matcher.ts'
import { probeOneSide, probeSpecs } from './ws-live/probes.ts'
import { endpointReport, probeResults } from './ws-live/report.ts'
import { within } from '../util/within.ts'
import { FeedSocket, liveUrl, type Role } from './ws-live/sockets.ts'
import type {
  LiveFeedTarget,
  LiveLag,
  LiveTypeCount,
  ProbeResult,
  Side,
  SocketHealth,
  SubscribeCheck,
  WindowSnapshot,
} from './ws-live/types.ts'
import { SIDES } from './ws-live/types.ts'

export { diffJson, identityOf, messageType } from './ws-live/identity.ts'
export { LiveComparator, StreamMatcher, type WindowComparison } from './ws-live/matcher.ts'
export { isProbePlayer, MISSING_LANDBLOCK, PROBE_COMMAND, PROBE_PLAYER_PREFIX } from './ws-live/probes.ts'
export { liveUrl } from './ws-live/sockets.ts'
export type {
  Blind,
  LiveFeedTarget,
  LiveLag,
  LiveTypeCount,
  ProbeName,
  ProbeResult,
  Received,
  Side,
  SocketHealth,
  SocketSnapshot,
  SubscribeCheck,
  WindowSnapshot,
} from './ws-live/types.ts'

/**
 * The browser feed `/ws/live` of primary and shadow, compared (issue 9 §3, CONTRACT.md §3): two
 * firehose sockets and two subscribed sockets held open across windows, every window's messages
 * paired frame by frame, and probes whose answers must agree. Lag and missed messages are reported
 * as such, never as field mismatches.
 */

/** How long one side may trail the other before a message only it has counts as missing. */
export const DEFAULT_LAG_MARGIN_MS = 2_000
/** Messages kept per socket per window; past it the socket counts overflow and is blind until the next window. */
export const DEFAULT_MAX_MESSAGES = 50_000
export const DEFAULT_SUBSCRIBE_TYPES: readonly string[] = ['rare', 'chat', 'telemetry']

export interface LiveFeedsOptions {
  primary: LiveFeedTarget
  shadow: LiveFeedTarget
  logger: Logger
  /** How far one side may trail the other ({@link DEFAULT_LAG_MARGIN_MS}). */
  lagMarginMs?: number
  /** Messages kept per socket per window ({@link DEFAULT_MAX_MESSAGES}). */
  maxMessagesPerWindow?: number
  /** What the subscribed sockets ask for; `telemetry` selects the typeless telemetry. */
  subscribeTypes?: readonly string[]
  /** The command_error and dungeon-map probes, at every window (default on). */
  probes?: boolean
  /** How long a probe (and a subscribe's confirmation) may take before it counts as unanswered (3 s). */
  probeTimeoutMs?: number
  /** The WebSocket handshake's timeout (5 s). */
  connectTimeoutMs?: number
  /** Reconnect backoff: doubles from `initialMs` (250) up to `maxMs` (5 000). */
  reconnect?: { initialMs?: number; maxMs?: number }
  /** Differences kept as evidence in a report (20). */
  examples?: number
  /** Largest message accepted; a larger one closes the socket, which reconnects (16 MiB). */
  maxPayloadBytes?: number
}

/** The report of one window: an {@link EndpointReport} named `ws-live`, and the feed's own figures. */
export interface WsLiveReport extends EndpointReport {
  window: { startedAt: string; endedAt: string; durationMs: number }
  liveLag: LiveLag
  types: LiveTypeCount[]
  /** Telemetry messages that carried a `type` key (CONTRACT.md §3 sends telemetry typeless). */
  typedTelemetry: Record<Side, number>
  subscribe: { types: string[]; primary: SubscribeCheck; shadow: SubscribeCheck }
  probes: ProbeResult[]
  feeds: Record<Side, { firehose: SocketHealth; subscribed: SocketHealth }>
  /** What could not be observed (a side down, a reconnect gap, a probe socket refused), as sweep errors. */
  errorEntries: SweepError[]
}

/** Open feeds: one report per window, sockets kept across windows. */
export interface LiveFeeds {
  /** Compares everything received since the previous call (or the opening); never throws for a down side. */
  window(): Promise<WsLiveReport>
  /**
   * Messages kept so far in the current window, per side and socket, when the last arrived, and
   * whether both sockets of the side are receiving.
   */
  received(): Record<Side, { firehose: number; subscribed: number; lastAt: number | null; up: boolean }>
  close(): Promise<void>
}

/**
 * Opens the firehose and subscribed sockets of both sides and waits (up to the connect and
 * subscribe timeouts, never failing) until they receive. Each {@link LiveFeeds.window} then
 * compares what arrived since the previous one; {@link LiveFeeds.close} ends them.
 */
export async function openLiveFeeds(options: LiveFeedsOptions): Promise<LiveFeeds> {
  const opened = Date.now()
  const margin = options.lagMarginMs ?? DEFAULT_LAG_MARGIN_MS
  const subscribeTypes = [...(options.subscribeTypes ?? DEFAULT_SUBSCRIBE_TYPES)]
  const probeTimeoutMs = options.probeTimeoutMs ?? 3_000
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000
  const maxPayload = options.maxPayloadBytes ?? 16 * 1024 * 1024
  const log = options.logger.child({ component: 'ws-live' })
  const urls = { primary: liveUrl(options.primary.url), shadow: liveUrl(options.shadow.url) }
  const socket = (side: Side, role: Role) =>
    new FeedSocket({
      side,
      role,
      url: urls[side],
      headers: options[side].headers,
      subscribeTypes,
      maxMessages: options.maxMessagesPerWindow ?? DEFAULT_MAX_MESSAGES,
      maxPayload,
      syncTimeoutMs: probeTimeoutMs,
      connectTimeoutMs,
      retry: { initialMs: options.reconnect?.initialMs ?? 250, maxMs: options.reconnect?.maxMs ?? 5_000 },
      log: log.child({ side, socket: role }),
    })
  const sockets = {
    primary: { firehose: socket('primary', 'firehose'), subscribed: socket('primary', 'subscribed') },
    shadow: { firehose: socket('shadow', 'firehose'), subscribed: socket('shadow', 'subscribed') },
  }
  const all = SIDES.flatMap((side) => [sockets[side].firehose, sockets[side].subscribed])
  await within(Promise.all(all.map((s) => s.ready)), connectTimeoutMs + probeTimeoutMs)
  const comparator = new LiveComparator({ lagMarginMs: margin, subscribeTypes })
  let windowStart = opened

  const window = async (): Promise<WsLiveReport> => {
    const cut = Date.now()
    const startedAt = windowStart
    windowStart = cut
    const errorEntries: SweepError[] = []
    const entry = (side: Side, message: string) =>
      errorEntries.push({ endpoint: 'ws-live', url: urls[side], side, code: ERR.CMP_BACKEND, message })
    const take = (side: Side, role: Role) => {
      const t = sockets[side][role].take(cut, startedAt, cut - 3 * margin)
      for (const g of t.gaps) {
        entry(
          side,
          `${side} /ws/live ${role}: reconnected after a ${((g.to - g.from) / 1000).toFixed(3)} s gap`,
        )
      }
      if (t.down !== undefined) {
        const since = Number.isFinite(t.down.since) ? ` since ${new Date(t.down.since).toISOString()}` : ''
        entry(side, `${side} /ws/live ${role}: not receiving${since} (${t.down.reason})`)
      }
      return t
    }
    const taken = {
      primary: { firehose: take('primary', 'firehose'), subscribed: take('primary', 'subscribed') },
      shadow: { firehose: take('shadow', 'firehose'), subscribed: take('shadow', 'subscribed') },
    }
    const snapshot: WindowSnapshot = {
      startedAt,
      cut,
      primary: { firehose: taken.primary.firehose.snapshot, subscribed: taken.primary.subscribed.snapshot },
      shadow: { firehose: taken.shadow.firehose.snapshot, subscribed: taken.shadow.subscribed.snapshot },
    }
    const cmp = comparator.compare(snapshot)

    let probes: ProbeResult[] = []
    if (options.probes !== false) {
      const specs = probeSpecs(cmp.landblock)
      const answers = {} as Record<Side, (Record<string, unknown> | null)[] | undefined>
      await Promise.all(
        SIDES.map(async (side) => {
          try {
            answers[side] = await probeOneSide(urls[side], options[side].headers, specs, {
              timeoutMs: probeTimeoutMs,
              maxPayload,
            })
          } catch (err) {
            answers[side] = undefined
            entry(side, `${side} /ws/live probe: ${coerceError(err).message}`)
          }
        }),
      )
      probes = probeResults(specs, answers, cmp.differences, cmp.observations)
    }

    const report = endpointReport(cmp.differences, cmp.observations, {
      errors: errorEntries.length,
      instances: cmp.compared + probes.length,
      paired: cmp.paired,
      delaysMs: cmp.delaysMs,
      unpaired:
        cmp.liveLag.behind.primary +
        cmp.liveLag.behind.shadow +
        cmp.liveLag.unseen.primary +
        cmp.liveLag.unseen.shadow,
      examples: options.examples ?? 20,
    })
    const health = (side: Side) => ({
      firehose: taken[side].firehose.health,
      subscribed: taken[side].subscribed.health,
    })
    log.debug(
      { mismatches: report.mismatches, errors: errorEntries.length, paired: cmp.paired },
      'window compared',
    )
    return {
      ...report,
      window: {
        startedAt: new Date(startedAt).toISOString(),
        endedAt: new Date(cut).toISOString(),
        durationMs: cut - startedAt,
      },
      liveLag: cmp.liveLag,
      types: cmp.types,
      typedTelemetry: cmp.typedTelemetry,
      subscribe: { types: subscribeTypes, ...cmp.subscribe },
      probes,
      feeds: { primary: health('primary'), shadow: health('shadow') },
      errorEntries,
    }
  }

  return {
    window,
    received() {
      const of = (side: Side) => ({
        firehose: sockets[side].firehose.kept,
        subscribed: sockets[side].subscribed.kept,
        lastAt: Math.max(sockets[side].firehose.lastAt ?? 0, sockets[side].subscribed.lastAt ?? 0) || null,
        up: sockets[side].firehose.live && sockets[side].subscribed.live,
      })
      return { primary: of('primary'), shadow: of('shadow') }
    },
    async close() {
      await Promise.all(all.map((s) => s.close()))
    },
  }
}

/** One window of `windowMs` on fresh sockets: open, wait, compare, close (a `sweep` without `watch`). */
export async function compareLiveFeeds(
  options: LiveFeedsOptions & { windowMs: number; signal?: AbortSignal },
): Promise<WsLiveReport> {
  const feeds = await openLiveFeeds(options)
  try {
    await sleep(
      options.windowMs,
      undefined,
      options.signal === undefined ? {} : { signal: options.signal },
    ).catch(() => {})
    return await feeds.window()
  } finally {
    await feeds.close()
  }
}
