import { sendableClose } from '../util/close-codes.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import { ERR, OverlordError } from '../protocol/errors.ts'
import type { RecordedResponse } from '../capture/format.ts'
import { takeSnapshot } from '../capture/snapshots.ts'
import type { Capture } from '../capture/reader.ts'
import type { Difference, SnapshotJudge } from './snapshot-compare.ts'
import type { VirtualClock } from './virtual-clock.ts'

/** The fresh tracker a capture is replayed into; it runs on `clock`. */
export interface ReplayTarget {
  /** HTTP base URL, e.g. `http://127.0.0.1:41234`. */
  baseUrl: string
  /** Its plugin secret (sent as `X-Plugin-Secret`). */
  secret: string
  clock: VirtualClock
  /** Flushes pending writes and refreshes cached views (Tracker.settle). */
  settle(): Promise<void>
}

export interface ReplayOptions {
  capture: Capture
  target: ReplayTarget
  logger: Logger
  /** Virtual ms per real ms; `Infinity` (the default) replays as fast as the target takes it. */
  speed?: number
  /** The comparison engine, as `sweep` uses it (see {@link loadJudge}). */
  judge: SnapshotJudge
  /** Endpoints never compared (volatile ones). */
  ignoreEndpoints?: readonly string[]
  onProgress?: (done: number, total: number) => void
}

/** One endpoint at one snapshot instant. */
export interface EndpointResult {
  path: string
  /** The catalog endpoint it was expanded from; absent for a path outside the catalog. */
  endpoint?: string
  equal: boolean
  differences: Difference[]
  /** Differences explained as the recorded primary's lag (its `/live` cache, its write delay). */
  explained: number
  /** Differences on history the primary held before the capture (its baseline): not judged. */
  preExisting?: Difference[]
  /** Entities at another frame than the primary's: seconds the recorded primary trailed the replay (negative) or led it. */
  lagMs?: number[]
}

export interface SnapshotResult {
  /** Offset of the snapshot from the capture's first event, ms. */
  offset_ms: number
  endpoints: EndpointResult[]
}

export interface ReplayResult {
  frames: number
  connections: number
  snapshots: SnapshotResult[]
  /** Endpoint comparisons made, and how many differed. */
  compared: number
  mismatched: number
  equal: boolean
}

/**
 * Feeds a capture into a fresh tracker on virtual time: each recorded plugin connection becomes a
 * socket, frames are sent in recorded order, and before the clock moves on every socket that carried
 * frames is fenced with a ping (the pong proves the tracker handled, and time-stamped, what came before
 * it). At each recorded snapshot instant the target settles and its read endpoints are compared with
 * the primary's. The same capture gives the same result on every run.
 */
export async function replayCapture(o: ReplayOptions): Promise<ReplayResult> {
  const { capture, target, logger } = o
  const speed = o.speed ?? Number.POSITIVE_INFINITY
  const ignore = new Set(o.ignoreEndpoints ?? [])
  const wsUrl = `${target.baseUrl.replace(/^http/, 'ws')}/ws/position`
  const sockets = new Map<string, WebSocket>()
  const dirty = new Set<WebSocket>()
  const first = capture.events[0]?.t ?? 0
  const result: ReplayResult = {
    frames: 0,
    connections: 0,
    snapshots: [],
    compared: 0,
    mismatched: 0,
    equal: true,
  }
  let virtualAt = first
  let realAt = performance.now()

  const openSocket = async (conn: string): Promise<WebSocket> => {
    const ws = new WebSocket(wsUrl, {
      headers: { 'X-Plugin-Secret': target.secret },
      perMessageDeflate: false,
    })
    ws.on('error', (err) => logger.debug({ err, conn }, 'replay socket error'))
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_q, res) =>
        reject(
          new OverlordError(ERR.TEE_UPSTREAM, `replay target refused the plugin socket: ${res.statusCode}`),
        ),
      )
      ws.once('close', (code) =>
        reject(new OverlordError(ERR.TEE_UPSTREAM, `replay target closed the plugin socket: ${code}`)),
      )
    })
    ws.on('close', (code) => {
      if (code === 1008) logger.warn({ conn, code }, 'replay target refused the plugin socket')
    })
    sockets.set(conn, ws)
    result.connections += 1
    return ws
  }

  const fence = async (): Promise<void> => {
    const pending = [...dirty].filter((ws) => ws.readyState === WebSocket.OPEN)
    dirty.clear()
    await Promise.all(
      pending.map(
        (ws) =>
          new Promise<void>((resolve) => {
            const done = () => {
              ws.off('pong', done)
              ws.off('close', done)
              resolve()
            }
            ws.on('pong', done)
            ws.on('close', done)
            ws.ping()
          }),
      ),
    )
  }

  const moveTo = async (t: number): Promise<void> => {
    if (t === virtualAt) return
    await fence()
    if (Number.isFinite(speed) && t > virtualAt) {
      const due = realAt + (t - virtualAt) / speed
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      realAt = Math.max(due, performance.now())
    }
    virtualAt = Math.max(virtualAt, t)
    target.clock.set(t)
  }

  target.clock.set(first)
  const total = capture.events.length
  try {
    for (const [i, event] of capture.events.entries()) {
      await moveTo(event.t)
      if (event.kind === 'open') {
        if (!sockets.has(event.conn)) await openSocket(event.conn)
      } else if (event.kind === 'frame') {
        const ws = sockets.get(event.conn) ?? (await openSocket(event.conn))
        // Another socket still in flight: fence it, so frames on different connections reach the
        // tracker in recorded order (portal discovery, for one, depends on it).
        if (dirty.size > 0 && !dirty.has(ws)) await fence()
        ws.send(event.data)
        dirty.add(ws)
        result.frames += 1
      } else if (event.kind === 'close') {
        const ws = sockets.get(event.conn)
        sockets.delete(event.conn)
        if (ws !== undefined) {
          await fence()
          await closeSocket(ws, sendableClose(event.code))
        }
      } else if (event.kind === 'snapshot' && event.baseline === true) {
        // The primary before the capture: what the replay cannot reproduce, told apart from divergence.
        o.judge.baseline(event.responses, event.t)
      } else if (event.kind === 'snapshot') {
        await fence()
        await target.settle()
        const endpoints = Object.keys(event.responses).filter((p) => !ignore.has(p))
        const actual = await takeSnapshot({ baseUrl: target.baseUrl, endpoints, logger, side: 'shadow' })
        const snapshot: SnapshotResult = { offset_ms: event.t - first, endpoints: [] }
        const specs = o.judge.endpointsOf(event.responses, event.t)
        for (const path of endpoints) {
          const expected = event.responses[path] as RecordedResponse
          const spec = specs.get(path)
          const verdict = o.judge.judge(
            path,
            spec,
            expected,
            actual[path] ?? { status: 0, body: null },
            event.t,
          )
          const { differences, explained, lag, preExisting } = verdict
          snapshot.endpoints.push({
            path,
            ...(spec === undefined ? {} : { endpoint: spec.name }),
            equal: differences.length === 0,
            differences,
            explained,
            ...(preExisting.length === 0 ? {} : { preExisting }),
            ...(lag.length === 0 ? {} : { lagMs: lag.map((l) => l.ms) }),
          })
          result.compared += 1
          if (differences.length > 0) result.mismatched += 1
        }
        result.snapshots.push(snapshot)
      }
      if (o.onProgress !== undefined && (i % 500 === 0 || i === total - 1)) o.onProgress(i + 1, total)
    }
  } finally {
    await Promise.all([...sockets.values()].map((ws) => closeSocket(ws, 1000)))
  }
  result.equal = result.mismatched === 0
  return result
}

async function closeSocket(ws: WebSocket, code: number): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return
  await new Promise<void>((resolve) => {
    ws.once('close', () => resolve())
    if (ws.readyState === WebSocket.OPEN) ws.close(code)
    else ws.terminate()
  })
}
