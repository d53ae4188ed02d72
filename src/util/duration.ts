import { ERR, OverlordError } from '../protocol/errors.ts'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** `250ms`, `30s`, `5m`, `1h`, `2d` or plain milliseconds; anything else is a configuration error. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) throw new OverlordError(ERR.CONFIG, `bad duration: ${text} (use 500ms, 10s, 5m, 1h or 2d)`)
  return Number(m[1]) * UNIT_MS[(m[2] ?? 'ms') as keyof typeof UNIT_MS]
}
