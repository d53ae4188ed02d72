/** What the shadow side of a tee did with the frames it was handed (served at the tee's `/metrics`). */
export interface MirrorCounters {
  /** Frames handed to the mirror. */
  frames_in: number
  /** Frames written to a shadow socket. */
  frames_forwarded: number
  /** Dropped because a connection's pending queue was full (shadow connecting or down). */
  dropped_overflow: number
  /** Dropped because the shadow socket's send buffer was over its bound (shadow slow). */
  dropped_slow: number
  /** Dropped because the connection limit was reached. */
  dropped_no_link: number
  /** Shadow connections opened, and refused (handshake refused or closed 1008). */
  shadow_connects: number
  shadow_refused: number
  shadow_errors: number
  /** Connections currently mirrored. */
  links: number
}

export function newMirrorCounters(): MirrorCounters {
  return {
    frames_in: 0,
    frames_forwarded: 0,
    dropped_overflow: 0,
    dropped_slow: 0,
    dropped_no_link: 0,
    shadow_connects: 0,
    shadow_refused: 0,
    shadow_errors: 0,
    links: 0,
  }
}
