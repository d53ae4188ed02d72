import { ERR, OverlordError } from '../../protocol/errors.ts'

export { parseDuration } from '../../util/duration.ts'

/** `host:port`, `:port` or `port`. */
export function parseListen(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':')
  const host = i > 0 ? text.slice(0, i) : '127.0.0.1'
  const port = Number(i >= 0 ? text.slice(i + 1) : text)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new OverlordError(ERR.CONFIG, `bad listen address: ${text}`)
  return { host, port }
}

export function parseCount(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new OverlordError(ERR.CONFIG, `not a count: ${text}`)
  return n
}

/** `max` (as fast as the target takes it) or a positive factor. */
export function parseSpeed(text: string): number {
  if (text === 'max') return Number.POSITIVE_INFINITY
  const n = Number(text)
  if (!(n > 0)) throw new OverlordError(ERR.CONFIG, `bad speed: ${text}`)
  return n
}

/** Resolves when SIGINT/SIGTERM arrives or `ms` passes. */
export function untilStopped(ms?: number): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      clearTimeout(timer)
      resolve()
    }
    const timer = ms === undefined ? undefined : setTimeout(stop, ms)
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}
