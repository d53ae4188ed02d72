/**
 * What an alert says and where it goes, as pure functions: the message text, the webhook body,
 * a loggable form of the webhook URL, and `Retry-After` parsing. The I/O lives in `alerts.ts`.
 */

import type { DeathEvent, IdleEvent } from './live-state.ts'

/** What replaces the secret part of a webhook URL in logs. */
const REDACTED = '[redacted]'

/**
 * A webhook URL fit for a log: scheme and host only. A Discord webhook's path is
 * `/api/webhooks/{id}/{token}` and the token is the whole credential.
 */
export function webhookTarget(url: string): string {
  try {
    const u = new URL(url)
    return u.pathname === '/' && u.search === '' ? u.origin : `${u.origin}/${REDACTED}`
  } catch {
    return REDACTED
  }
}

const formatNumber = (n: number): string => String(Math.round(n * 100) / 100)

/** The message posted for a death. */
export function deathMessage(e: DeathEvent): string {
  return `💀 ${e.character_name} died (vitae ${formatNumber(e.vitae)}%)`
}

/** The message posted for an idle character. */
export function idleMessage(e: IdleEvent): string {
  const minutes = Math.floor((e.at - e.idle_since) / 60_000)
  return `💤 ${e.character_name} has been idle for ${minutes} minute${minutes === 1 ? '' : 's'}`
}

/**
 * The webhook body. Character names come from plugins: `allowed_mentions` with no parse types
 * keeps a name like `@everyone` from pinging anyone.
 */
export const webhookBody = (content: string): string =>
  JSON.stringify({ content, allowed_mentions: { parse: [] } })

/** A `Retry-After` value (delta seconds, fractional as Discord sends, or an HTTP date) in ms. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined || text.trim() === '') return undefined
  const seconds = Number(text)
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** Whether `url` parses as an http(s) URL. */
export function isHttpUrl(url: string): boolean {
  try {
    return /^https?:$/.test(new URL(url).protocol)
  } catch {
    return false
  }
}
