import type { RecordedResponse } from './format.ts'

/** What a baseline snapshot says about the primary's history (pure). */
export interface BaselineHistory {
  /** What it already holds, for a person: `12 players in /live`, `340 trail points`... Empty when fresh. */
  held: string[]
  /** Endpoints that could not tell: `/live: no answer`, `/portals: status 401`. */
  unreadable: string[]
}

interface HistorySign {
  /** How many things the body shows, or undefined when it is not the shape the endpoint answers. */
  count: (body: Record<string, unknown>) => number | undefined
  noun: [singular: string, plural: string]
}

const listLength =
  (key: string) =>
  (body: Record<string, unknown>): number | undefined => {
    const list = body[key]
    return Array.isArray(list) ? list.length : undefined
  }

const numberAt =
  (key: string) =>
  (body: Record<string, unknown>): number | undefined => {
    const n = body[key]
    return typeof n === 'number' ? n : undefined
  }

/** The read endpoints (CONTRACT.md §4) whose answer shows history, by path without its query. */
const HISTORY_SIGNS = new Map<string, HistorySign>([
  ['/live', { count: listLength('players'), noun: ['player in /live', 'players in /live'] }],
  ['/trails', { count: listLength('trails'), noun: ['trail point', 'trail points'] }],
  ['/history', { count: listLength('data'), noun: ['row in /history', 'rows in /history'] }],
  ['/total-kills', { count: numberAt('total'), noun: ['kill in /total-kills', 'kills in /total-kills'] }],
  ['/total-rares', { count: numberAt('all_time'), noun: ['rare in /total-rares', 'rares in /total-rares'] }],
  [
    '/character-stats/list',
    { count: listLength('characters'), noun: ['character with stats', 'characters with stats'] },
  ],
  ['/portals', { count: listLength('portals'), noun: ['portal', 'portals'] }],
  ['/spawns/heatmap', { count: listLength('spawn_points'), noun: ['spawn point', 'spawn points'] }],
  ['/quest-status', { count: listLength('quest_data'), noun: ['quest timer', 'quest timers'] }],
  [
    '/vital-sharing/peers',
    { count: listLength('peers'), noun: ['vital-sharing peer', 'vital-sharing peers'] },
  ],
])

/**
 * Reads a baseline snapshot for history a replay could not tell from the capture's own frames.
 * Endpoints it does not know (per-character stats follow `/live`) are not judged.
 */
export function baselineHistory(responses: Record<string, RecordedResponse>): BaselineHistory {
  const held: string[] = []
  const unreadable: string[] = []
  for (const [path, response] of Object.entries(responses)) {
    const sign = HISTORY_SIGNS.get(path.split('?', 1)[0] as string)
    if (sign === undefined) continue
    if (response.status < 200 || response.status > 299) {
      unreadable.push(`${path}: ${response.status === 0 ? 'no answer' : `status ${response.status}`}`)
      continue
    }
    const body = response.body
    const count =
      typeof body === 'object' && body !== null && !Array.isArray(body)
        ? sign.count(body as Record<string, unknown>)
        : undefined
    if (count === undefined) unreadable.push(`${path}: an answer of another shape`)
    else if (count > 0) held.push(`${count} ${count === 1 ? sign.noun[0] : sign.noun[1]}`)
  }
  return { held, unreadable }
}
