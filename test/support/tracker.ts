import { once } from 'node:events'
import WebSocket from 'ws'
import { buildTracker, type Tracker, type TrackerOptions } from '../../src/tracker/build-tracker.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export const SECRET = 'test-plugin-secret'

export interface RunningTracker {
  tracker: Tracker
  url: string
  wsUrl: string
  database: TestDatabase
  close(): Promise<void>
}

/** Where a test tracker keeps its data: a clone of the template on the real server, or embedded PGlite. */
export type Backend = 'postgres' | 'embedded'

/** A tracker on a fresh clone of the template database (or an in-memory embedded one), on a free loopback port. */
export async function startTracker(
  options: Partial<TrackerOptions> = {},
  backend: Backend = 'postgres',
): Promise<RunningTracker> {
  const database: TestDatabase =
    backend === 'postgres' ? await createTestDatabase() : { name: 'embedded', url: '', drop: async () => {} }
  const tracker = await buildTracker(
    backend === 'postgres'
      ? { databaseUrl: database.url, sharedSecret: SECRET, skipSchemaInit: true, ...options }
      : { sharedSecret: SECRET, ...options },
  )
  const url = await tracker.listen(0)
  return {
    tracker,
    url,
    wsUrl: url.replace('http', 'ws'),
    database,
    async close() {
      await tracker.close()
      await database.drop()
    },
  }
}

/** A connected plugin-shaped client; `secret: null` sends none. */
export async function connectPlugin(
  wsUrl: string,
  secret: string | null = SECRET,
  how: 'header' | 'query' = 'header',
) {
  const url =
    how === 'query' && secret !== null
      ? `${wsUrl}/ws/position?secret=${encodeURIComponent(secret)}`
      : `${wsUrl}/ws/position`
  const headers = how === 'header' && secret !== null ? { 'X-Plugin-Secret': secret } : {}
  const ws = new WebSocket(url, { headers })
  watchClose(ws)
  await once(ws, 'open')
  return ws
}

const closes = new WeakMap<WebSocket, Promise<number>>()

/** Records a socket's close code from its creation on, so a close right after open is not missed. */
function watchClose(ws: WebSocket): void {
  closes.set(ws, new Promise((resolve) => ws.once('close', (code: number) => resolve(code))))
}

/** A browser-shaped client that records every message it receives. */
export async function connectBrowser(wsUrl: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`${wsUrl}/ws/live`, { headers })
  watchClose(ws)
  const messages: Record<string, unknown>[] = []
  const waiters: {
    pred: (m: Record<string, unknown>) => boolean
    resolve: (m: Record<string, unknown>) => void
  }[] = []
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as Record<string, unknown>
    messages.push(m)
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(m)
      }
    }
  })
  await once(ws, 'open')
  return {
    ws,
    messages,
    /** Resolves with the first message (already received or future) matching `pred`. */
    waitFor(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
      const seen = messages.find(pred)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve) => waiters.push({ pred, resolve }))
    },
  }
}

/** Sends frames, then waits until the tracker has received `frames.length` more of them (its /metrics.json). */
export async function sendFrames(url: string, ws: WebSocket, frames: readonly unknown[]): Promise<void> {
  const before = (await waitForMetrics(url, () => true)).frames_received as number
  for (const f of frames) ws.send(typeof f === 'string' ? f : JSON.stringify(f))
  await waitForMetrics(url, (m) => m.frames_received >= before + frames.length)
}

/** Polls `/metrics.json` until `pred` holds. */
export async function waitForMetrics(
  url: string,
  pred: (m: Record<string, any>) => boolean,
): Promise<Record<string, any>> {
  for (;;) {
    const m = (await (await fetch(`${url}/metrics.json`)).json()) as Record<string, any>
    if (pred(m)) return m
    await new Promise((r) => setTimeout(r, 10))
  }
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init)
  return { status: res.status, body: await res.json() }
}

/** The close code of a socket made by these helpers, once it closes. */
export function closeCode(ws: WebSocket): Promise<number> {
  const p = closes.get(ws)
  if (p === undefined) throw new Error('socket not made by connectPlugin/connectBrowser')
  return p
}

export function telemetry(character: string, fields: Record<string, unknown> = {}) {
  return {
    type: 'telemetry',
    character_name: character,
    char_tag: 'tag',
    session_id: 's1',
    timestamp: new Date().toISOString(),
    ew: 12.5,
    ns: -33.25,
    z: 0.5,
    kills: 0,
    kills_per_hour: '340.5',
    onlinetime: '00:10:00',
    deaths: '1',
    total_deaths: '57',
    rares_found: 0,
    prismatic_taper_count: '120',
    vt_state: 'Combat',
    ...fields,
  }
}
