import { setTimeout as sleep } from 'node:timers/promises'

/** Resolves with `work`'s value, or undefined once `ms` have passed. */
export async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  const timer = new AbortController()
  try {
    return await Promise.race([work, sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined)])
  } finally {
    timer.abort()
  }
}
