/**
 * A browser's message to the tracker (CONTRACT.md §3), decoded once at the edge: past the
 * decoder every key is a string and nothing sees the raw JSON but the command relayed as-is.
 */
export type BrowserMessage =
  | { kind: 'subscribe'; messageTypes: readonly string[] }
  /** `landblock` is null when the browser sent no string: nothing can be cached under it. */
  | { kind: 'request_dungeon_map'; landblock: string | null }
  | { kind: 'command'; playerName: string }
  | { kind: 'ignored'; reason: BrowserMessageFault }

/** Why a browser message was ignored: fixed names of ours, safe to log and count. */
export type BrowserMessageFault = 'not_json' | 'not_object' | 'bad_subscribe' | 'unrecognized'

const ignored = (reason: BrowserMessageFault): BrowserMessage => ({ kind: 'ignored', reason })

/** An own property only: a message's `toString` or `constructor` must never reach `Object.prototype`. */
const own = (o: object, key: string): unknown =>
  Object.hasOwn(o, key) ? (o as Record<string, unknown>)[key] : undefined

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((t) => typeof t === 'string')

/**
 * Decodes one `/ws/live` message. A `subscribe` whose `message_types` is not an array of strings
 * is ignored whole, so the browser keeps its current subscription rather than silently losing it.
 */
export function decodeBrowserMessage(text: string): BrowserMessage {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return ignored('not_json')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ignored('not_object')
  const type = own(value, 'type')
  if (type === 'subscribe') {
    const types = own(value, 'message_types')
    return isStringArray(types) ? { kind: 'subscribe', messageTypes: types } : ignored('bad_subscribe')
  }
  if (type === 'request_dungeon_map') {
    const landblock = own(value, 'landblock')
    return { kind: 'request_dungeon_map', landblock: typeof landblock === 'string' ? landblock : null }
  }
  const playerName = own(value, 'player_name')
  if (typeof playerName === 'string' && typeof own(value, 'command') === 'string') {
    return { kind: 'command', playerName }
  }
  return ignored('unrecognized')
}
