/** The shapes shared by the parts of the `/ws/live` comparison: what a socket received, and the figures. */

/** The two trackers compared: the legacy primary (the authority) and the shadow. */
export type Side = 'primary' | 'shadow'
export const SIDES: readonly Side[] = ['primary', 'shadow']

/** One side of the comparison. */
export interface LiveFeedTarget {
  /** The tracker's base URL, e.g. `http://127.0.0.1:8765`; a path prefix is kept. */
  url: string
  /**
   * Sent with every upgrade (a session `cookie`); none for internal trust. A function is asked
   * again at each reconnect, e.g. `() => backendClient.authHeaders()`.
   */
  headers?: Record<string, string> | (() => Promise<Record<string, string>>)
}

/** One message a socket received, and when (epoch ms). */
export interface Received {
  at: number
  msg: Record<string, unknown>
  /** Identity, computed once (see {@link identityOf}). */
  id?: string
}

/** When a socket could not see messages: before it first connected, while down, while overflowing. */
export interface Blind {
  from: number
  /** `Infinity` while it lasts. */
  to: number
  reason: 'start' | 'down' | 'overflow'
}

export interface SocketSnapshot {
  items: Received[]
  blind: Blind[]
}

/** What the four sockets received since the previous window, cut at `cut`. */
export interface WindowSnapshot {
  startedAt: number
  cut: number
  primary: { firehose: SocketSnapshot; subscribed: SocketSnapshot }
  shadow: { firehose: SocketSnapshot; subscribed: SocketSnapshot }
}

/** The lag of the window, measured on receive times (the two sockets share one clock). */
export interface LiveLag {
  /** Messages paired across the sides. */
  samples: number
  /** Seconds the shadow's copy arrived after the primary's (negative: before), over the pairs. */
  p50Seconds: number | null
  maxSeconds: number | null
  minSeconds: number | null
  /**
   * Messages one side had within the lag margin of the window's end and the other not yet:
   * carried to the next window. `shadow` counts what the shadow is behind on.
   */
  behind: Record<Side, number>
  /** How long the oldest of those had been waiting at the cut. */
  behindSeconds: number | null
  /** Messages left unpaired because the other side's socket was blind then (start, reconnect, overflow). */
  unseen: Record<Side, number>
  /** Copies that arrived after an earlier window had already reported them missing. */
  late: number
  marginSeconds: number
}

export interface LiveTypeCount {
  type: string
  primary: number
  shadow: number
  paired: number
  missing: number
  extra: number
  lag: number
}

/** The subscribe filter of one side: the subscribed socket against that side's firehose. */
export interface SubscribeCheck {
  received: number
  /** Messages of a type not subscribed to. */
  violations: { type: string; count: number }[]
  /** Subscribed-type messages the firehose had and the subscribed socket did not (outside the margin). */
  missed: number
  /** Messages the subscribed socket had and the firehose did not. */
  extra: number
  lag: number
}

export type ProbeName = 'command_error' | 'dungeon_map' | 'dungeon_map_not_found'

export interface ProbeResult {
  name: ProbeName
  request: Record<string, unknown>
  /** The answer, or null when none came within the probe timeout (or the side was down). */
  primary: unknown
  shadow: unknown
  agree: boolean
  /** Whether each side's answer is the one the contract fixes; null where it fixes none. */
  asContract: Record<Side, boolean | null> | null
}

export interface SocketHealth {
  up: boolean
  kept: number
  overflow: number
  reconnects: number
  /** Seconds of this window the socket was down. */
  downSeconds: number
  unparsable: number
  tooDeep: number
  faults: number
}
