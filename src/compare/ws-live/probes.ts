import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import {
  headersOf,
  isDungeonMapFor,
  liveSocket,
  parseMessage,
  subscribeThenSync,
  syncLandblock,
} from './sockets.ts'
import { within } from '../../util/within.ts'
import type { LiveFeedTarget, ProbeName } from './types.ts'

/** The probes (I/O): requests whose answers both sides must agree on, sent on a socket of their own. */

/**
 * Every probe command goes to a player named so: the digits make it a name no game character can
 * have (CONTRACT.md §10: the harness never sends a command to a real character).
 */
export const PROBE_PLAYER_PREFIX = 'overlord-ts probe 0x'
export const PROBE_COMMAND = '/overlord-probe'
/** A landblock no dungeon can have: both sides must answer `not_found`. */
export const MISSING_LANDBLOCK = '0xFFFFFFFF'
/** A type nothing sends: a probe socket subscribes to it, so only the answers to its requests arrive. */
const NO_BROADCASTS = 'overlord-ts-probe-none'

/** One probe: what is sent, how its answer is recognised, and the answer the contract fixes, if any. */
export interface ProbeSpec {
  name: ProbeName
  request: Record<string, unknown>
  answers: (m: Record<string, unknown>) => boolean
  contract: Record<string, unknown> | undefined
}

const PROBE_NAME = /^overlord-ts probe 0x[0-9a-f]{8}$/

/** Whether `name` is a probe's own player name: the only kind a command is ever sent to. */
export function isProbePlayer(name: string): boolean {
  return PROBE_NAME.test(name)
}

/** This window's probes, to a fresh probe player; the dungeon_map one for a landblock seen in it. */
export function probeSpecs(landblock: string | undefined): ProbeSpec[] {
  const player = `${PROBE_PLAYER_PREFIX}${randomBytes(4).toString('hex')}`
  // CONTRACT.md §10: on the live primary a command reaches a real game client. Only ever ours.
  if (!isProbePlayer(player)) throw new OverlordError(ERR.CMP_BACKEND, `refusing to command ${player}`)
  const specs: ProbeSpec[] = [
    {
      name: 'command_error',
      request: { player_name: player, command: PROBE_COMMAND },
      answers: (m) => m.type === 'command_error' && m.player_name === player,
      contract: { type: 'command_error', player_name: player, error: 'not_connected' },
    },
    {
      name: 'dungeon_map_not_found',
      request: { type: 'request_dungeon_map', landblock: MISSING_LANDBLOCK },
      answers: (m) => isDungeonMapFor(m, MISSING_LANDBLOCK),
      contract: { type: 'dungeon_map', landblock: MISSING_LANDBLOCK, error: 'not_found' },
    },
  ]
  if (landblock !== undefined && landblock !== MISSING_LANDBLOCK) {
    specs.push({
      name: 'dungeon_map',
      request: { type: 'request_dungeon_map', landblock },
      answers: (m) => isDungeonMapFor(m, landblock),
      contract: undefined,
    })
  }
  return specs
}

/**
 * Sends the probes on a socket of their own, subscribed to nothing that is broadcast, and collects
 * the answers (null where none came in time). Rejects only when the socket cannot be opened.
 */
export async function probeOneSide(
  url: string,
  headers: LiveFeedTarget['headers'],
  specs: readonly ProbeSpec[],
  o: { timeoutMs: number; maxPayload: number },
): Promise<(Record<string, unknown> | null)[]> {
  const ws = liveSocket(url, await headersOf(headers), {
    maxPayload: o.maxPayload,
    handshakeTimeoutMs: o.timeoutMs,
  })
  const waiting: {
    match: (m: Record<string, unknown>) => boolean
    resolve: (m: Record<string, unknown>) => void
  }[] = []
  const next = (match: (m: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve) => waiting.push({ match, resolve }))
  ws.on('message', (data) => {
    try {
      const parsed = parseMessage(data)
      if ('fault' in parsed) return
      const i = waiting.findIndex((w) => w.match(parsed.msg))
      if (i >= 0) waiting.splice(i, 1)[0]!.resolve(parsed.msg)
    } catch {
      // A malformed answer is no answer: the probe reports it as missing.
    }
  })
  let error: string | undefined
  let closeCode: number | undefined
  ws.on('error', (err) => {
    error = err.message
  })
  const closed = new Promise<void>((resolve) =>
    ws.once('close', (code) => {
      closeCode = code
      resolve()
    }),
  )
  const gone = () => new Error(error ?? `closed ${closeCode}`)
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      void closed.then(() => reject(gone()))
    })
    const sync = syncLandblock()
    const synced = next((m) => isDungeonMapFor(m, sync))
    subscribeThenSync(ws, [NO_BROADCASTS], sync)
    await within(Promise.race([synced, closed]), o.timeoutMs)
    const answers: (Record<string, unknown> | null)[] = specs.map(() => null)
    const all = Promise.all(
      specs.map((spec, i) =>
        next(spec.answers).then((m) => {
          answers[i] = m
        }),
      ),
    )
    for (const spec of specs) ws.send(JSON.stringify(spec.request))
    await within(Promise.race([all, closed]), o.timeoutMs)
    // Refused after the handshake (1008) or cut off: the side could not be probed, which is an error.
    if (closeCode !== undefined && answers.includes(null)) throw gone()
    return answers
  } finally {
    if (ws.readyState === WebSocket.OPEN) ws.close(1000)
    await within(closed, 1_000)
    ws.terminate()
  }
}
