import { Writable } from 'node:stream'
import pino, { type Logger } from 'pino'

export interface CapturedLogs {
  logger: Logger
  /** Every record written, parsed. */
  lines: Record<string, unknown>[]
  /** The same records as written, for checks on the text itself (e.g. that a secret never appears). */
  raw: string[]
}

/** A pino logger at `level` whose records are kept for the test to read (STYLE: assert on structure). */
export function captureLogs(level: pino.LevelWithSilent = 'debug'): CapturedLogs {
  const lines: Record<string, unknown>[] = []
  const raw: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line)
        lines.push(JSON.parse(line))
      }
      done()
    },
  })
  return { logger: pino({ level }, sink), lines, raw }
}
