import WebSocket from 'ws'

/**
 * Plugins as the real one behaves across a cutover: one WebSocket per character that reconnects
 * by itself when it is closed, a telemetry frame every `intervalMs` (dropped, not queued, while it
 * is disconnected), and now and then the other persisted types. Every frame's client timestamp is
 * unique per character, so rows in the database can be matched to the frames sent.
 */

export interface FleetOptions {
  url: string
  secret: string
  characters: readonly string[]
  intervalMs: number
  /** Client clock of the first frame (epoch ms); each frame is `intervalMs` later. */
  startMs: number
  reconnectMs?: number
}

/** One telemetry frame handed to a socket without error, and the connection it went on. */
export interface SentFrame {
  character: string
  timestamp: string
  kills: number
  connection: number
  sentAt: number
}

export interface CharacterLog {
  connects: number
  /** When each connection (by number) closed, epoch ms; absent while open. */
  closedAt: Map<number, number>
  sent: SentFrame[]
  /** Frames not sent because the socket was down (the plugin drops them). */
  skipped: number
}

export interface PluginFleet {
  log: Map<string, CharacterLog>
  /** Sockets open now. */
  open(): number
  stop(): Promise<void>
}

const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Combat stats written as the C# plugin's JSON text: floats keep their `.0`, which JavaScript's
 * JSON.stringify would drop; what is stored must be what Python stores from the same text.
 */
function combatText(character: string, session: string, n: number, ts: string): string {
  return `{"type":"combat_stats","character_name":${JSON.stringify(character)},"session_id":"${session}","timestamp":"${ts}","stats":{"kills":${n},"damage":{"fire":${n * 10}.0,"cold":${n}.5},"monsters":{"Drudge":{"kills":${n},"dealt":${n * 3}.0}}}}`
}

function characterStatsText(character: string, ts: string): string {
  return `{"type":"character_stats","character_name":${JSON.stringify(character)},"timestamp":"${ts}","level":275,"total_xp":191226310247,"unassigned_xp":0,"luminance_earned":1000.0,"luminance_total":2000,"deaths":3,"attributes":{"strength":{"base":100,"creation":10.0}},"titles":["Dereth's Finest"]}`
}

export function startPluginFleet(o: FleetOptions): PluginFleet {
  const log = new Map<string, CharacterLog>()
  const sockets = new Map<string, WebSocket>()
  let stopped = false
  const timers: NodeJS.Timeout[] = []
  o.characters.forEach((character, index) => {
    const entry: CharacterLog = { connects: 0, closedAt: new Map(), sent: [], skipped: 0 }
    log.set(character, entry)
    const session = `session-${index}`
    let n = 0
    let connection = 0
    const connect = () => {
      if (stopped) return
      const ws = new WebSocket(o.url, { headers: { 'X-Plugin-Secret': o.secret } })
      const id = ++connection
      sockets.set(character, ws)
      ws.on('open', () => {
        entry.connects += 1
        ws.send(characterStatsText(character, iso(o.startMs + n * o.intervalMs)))
      })
      ws.on('error', () => {})
      ws.on('close', () => {
        entry.closedAt.set(id, Date.now())
        if (sockets.get(character) === ws) sockets.delete(character)
        if (!stopped) setTimeout(connect, o.reconnectMs ?? 200)
      })
      ws.on('message', () => {})
      ;(ws as WebSocket & { connection?: number }).connection = id
    }
    connect()
    timers.push(
      setInterval(() => {
        n += 1
        const ts = iso(o.startMs + n * o.intervalMs)
        const ws = sockets.get(character)
        if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
          entry.skipped += 1
          return
        }
        const id = (ws as WebSocket & { connection?: number }).connection ?? 0
        const frame = {
          type: 'telemetry',
          character_name: character,
          char_tag: 'cutover',
          session_id: session,
          timestamp: ts,
          ew: 12.5 + n / 10,
          ns: -30.25,
          z: 0,
          kills: n,
          kills_per_hour: String(n * 6),
          onlinetime: '00:10:00',
          deaths: '0',
          total_deaths: '1',
          rares_found: 0,
          prismatic_taper_count: '57',
          vt_state: 'Combat',
        }
        const sentAt = Date.now()
        ws.send(JSON.stringify(frame), (err) => {
          if (err === undefined || err === null)
            entry.sent.push({ character, timestamp: ts, kills: n, connection: id, sentAt })
        })
        if (n % 5 === 0) ws.send(combatText(character, session, n, ts))
      }, o.intervalMs),
    )
  })
  return {
    log,
    open: () => [...sockets.values()].filter((ws) => ws.readyState === WebSocket.OPEN).length,
    async stop() {
      stopped = true
      for (const t of timers) clearInterval(t)
      await Promise.all(
        [...sockets.values()].map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve()
              ws.once('close', () => resolve())
              ws.close(1000)
            }),
        ),
      )
    },
  }
}
