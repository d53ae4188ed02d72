/**
 * What the shadow side of a tee did with the frames it was handed (served at the tee's `/metrics`
 * under `mirror`). Every frame handed to the mirror ends in exactly one place, so at every instant
 *
 * ```
 * frames_in = frames_forwarded
 *           + dropped_overflow + dropped_slow + dropped_no_link + dropped_closed + dropped_unflushed
 *           + pending
 * ```
 *
 * ({@link unaccountedFrames} is the difference, always 0). A frame is *forwarded* only once the shadow
 * socket wrote it to the kernel (the `ws.send` callback without error): until then it is *pending*.
 * What the tee cannot see is a forwarded frame that sat in the kernel's buffers when the shadow died
 * or restarted; that is what input accounting's `lostInTransit` (tee `frames_forwarded` − shadow
 * `frames_received`) measures.
 */
export interface MirrorCounters {
  /** Frames handed to the mirror. */
  frames_in: number
  /** Frames the shadow socket flushed to the kernel (the send completed without error). */
  frames_forwarded: number
  /** Dropped because a connection's pending queue was full (shadow connecting or down). */
  dropped_overflow: number
  /** Dropped because the shadow socket's send buffer was over its bound (shadow slow or stopped). */
  dropped_slow: number
  /** Dropped because no shadow connection could be made for it (the connection limit was reached). */
  dropped_no_link: number
  /**
   * Dropped because the connection was closing or closed: sent after the plugin's disconnect or the
   * tee's shutdown, or still queued (never written) when either happened or the shadow URL was unusable.
   */
  dropped_closed: number
  /** Written to the shadow socket but never flushed to the kernel: the socket died or was terminated first. */
  dropped_unflushed: number
  /** Gauge: frames queued while the shadow socket connects, plus frames in its send buffer not yet flushed. */
  pending: number
  /** Shadow connections opened, and refused (handshake refused or closed 1008). */
  shadow_connects: number
  shadow_refused: number
  shadow_errors: number
  /** Connections currently mirrored. */
  links: number
}

/** Every reason a frame handed to the mirror was not forwarded, in the order `/metrics` lists them. */
export const DROP_REASONS = [
  'dropped_overflow',
  'dropped_slow',
  'dropped_no_link',
  'dropped_closed',
  'dropped_unflushed',
] as const satisfies readonly (keyof MirrorCounters)[]

export function newMirrorCounters(): MirrorCounters {
  return {
    frames_in: 0,
    frames_forwarded: 0,
    dropped_overflow: 0,
    dropped_slow: 0,
    dropped_no_link: 0,
    dropped_closed: 0,
    dropped_unflushed: 0,
    pending: 0,
    shadow_connects: 0,
    shadow_refused: 0,
    shadow_errors: 0,
    links: 0,
  }
}

/** Frames dropped for any reason ({@link DROP_REASONS}). */
export function droppedFrames(c: MirrorCounters): number {
  let total = 0
  for (const reason of DROP_REASONS) total += c[reason]
  return total
}

/** `frames_in` less everything that accounts for a frame: 0 while the invariant above holds. */
export function unaccountedFrames(c: MirrorCounters): number {
  return c.frames_in - c.frames_forwarded - droppedFrames(c) - c.pending
}
