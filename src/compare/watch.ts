import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { coerceError } from '../protocol/errors.ts'
import { readDeclaration } from './gate.ts'
import { recordSweep } from './ledger.ts'
import { writeReports } from './report.ts'
import type { SweepResult } from './sweep.ts'

export interface WatchOptions {
  sweep: () => Promise<SweepResult>
  reportsDir: string
  intervalMs: number
  jitterMs?: number
  /** Stop after this long; forever (until cutover) when absent. */
  durationMs?: number
  /** Rebuild report.md/report.html every N sweeps (and at the end). */
  reportEvery?: number
  signal?: AbortSignal
  logger: Logger
  onSweep?: (sweep: SweepResult, n: number) => void
  random?: () => number
}

export type WatchStop = 'cutover' | 'duration' | 'aborted'

/**
 * Sweeps every interval (± jitter, so sweeps do not phase-lock with the 5 s /live cache) until
 * cutover is declared, the duration is over, or the signal aborts. A sweep that throws is logged
 * and the watch goes on: a down backend must not end the evidence trail.
 */
export async function watch(options: WatchOptions): Promise<{ stop: WatchStop; sweeps: number }> {
  const log = options.logger.child({ component: 'watch' })
  const random = options.random ?? Math.random
  const deadline =
    options.durationMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.durationMs
  let sweeps = 0
  let stop: WatchStop = 'duration'
  try {
    for (;;) {
      if (options.signal?.aborted) {
        stop = 'aborted'
        break
      }
      if ((await readDeclaration(options.reportsDir)) !== undefined) {
        stop = 'cutover'
        break
      }
      const started = Date.now()
      try {
        const result = await options.sweep()
        await recordSweep(options.reportsDir, result)
        sweeps += 1
        options.onSweep?.(result, sweeps)
        if (sweeps % (options.reportEvery ?? 10) === 0) await writeReports(options.reportsDir)
      } catch (caught) {
        log.error({ err: coerceError(caught) }, 'sweep failed; watching on')
      }
      if (Date.now() >= deadline) break
      const jitter = (options.jitterMs ?? 0) * (random() * 2 - 1)
      const wait = Math.max(
        0,
        Math.min(options.intervalMs + jitter - (Date.now() - started), deadline - Date.now()),
      )
      try {
        await sleep(wait, undefined, { signal: options.signal })
      } catch {
        stop = 'aborted'
        break
      }
      if (Date.now() >= deadline) break
    }
  } finally {
    if (sweeps > 0) await writeReports(options.reportsDir)
  }
  log.info({ stop, sweeps }, 'watch ended')
  return { stop, sweeps }
}
