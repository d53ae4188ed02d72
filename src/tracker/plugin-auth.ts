import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** The secrets a plugin may present (CONTRACT.md §2); none configured means every plugin is refused. */
export interface PluginSecrets {
  current: string | undefined
  legacy: string | undefined
}

const safeEqual = (a: string, b: string): boolean => {
  const ab = Buffer.from(a)
  const bb = Buffer.from(b)
  if (ab.length !== bb.length) {
    // timingSafeEqual needs equal lengths; still do the same work so the length does not leak by time.
    timingSafeEqual(ab, ab)
    return false
  }
  return timingSafeEqual(ab, bb)
}

/** The secret a plugin presented: `X-Plugin-Secret` header, else `?secret=`. */
export function presentedSecret(req: IncomingMessage): string | undefined {
  const header = req.headers['x-plugin-secret']
  if (typeof header === 'string') return header
  return new URL(req.url ?? '/', 'http://x').searchParams.get('secret') ?? undefined
}

/** Constant-time check against the current and the legacy secret; fails closed. */
export function pluginAuthorized(secrets: PluginSecrets, presented: string | undefined): boolean {
  if (presented === undefined) return false
  let ok = false
  for (const secret of [secrets.current, secrets.legacy]) {
    if (secret !== undefined && secret !== '' && safeEqual(presented, secret)) ok = true
  }
  return ok
}
