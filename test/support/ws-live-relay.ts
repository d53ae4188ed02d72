import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { sendableClose } from '../../src/util/close-codes.ts'

/** One browser connection through the relay. */
export interface RelayConnection {
  /** Whether this browser has sent a `subscribe` (whatever the relay then did with it). */
  subscribed: boolean
}

export interface WsLiveRelayOptions {
  /** Rewrites a tracker → browser message, or drops it (undefined). */
  down?: (text: string, conn: RelayConnection) => string | undefined
  /** Rewrites a browser → tracker message, or drops it (undefined). */
  up?: (text: string, conn: RelayConnection) => string | undefined
  /** Holds every tracker → browser message this long, order kept: a lagging side. */
  delayMs?: number
}

export interface WsLiveRelay {
  /** The relay's base URL, `http://127.0.0.1:port`, to use in place of the tracker's. */
  url: string
  /** Browser connections accepted so far. */
  readonly accepted: number
  /** Cuts every browser connection off (no close frame), as a network fault would. */
  dropClients(): void
  close(): Promise<void>
}

/**
 * A real WebSocket server in front of a tracker's `/ws/live`: every browser connection gets its
 * own upstream connection, and the relay rewrites, drops or delays what passes. This is how the
 * tests build a side that misbehaves, without a switch in the tracker.
 */
export async function startWsLiveRelay(
  upstream: string,
  options: WsLiveRelayOptions = {},
): Promise<WsLiveRelay> {
  const server = createServer((_req, res) => {
    res.statusCode = 404
    res.end()
  })
  const wss = new WebSocketServer({ server, perMessageDeflate: false })
  const upstreams = new Set<WebSocket>()
  let accepted = 0
  wss.on('connection', (client, req) => {
    accepted += 1
    const conn: RelayConnection = { subscribed: false }
    const up = new WebSocket(`${upstream.replace(/^http/, 'ws')}${req.url ?? '/ws/live'}`, {
      perMessageDeflate: false,
      headers: req.headers.cookie === undefined ? {} : { cookie: req.headers.cookie },
    })
    upstreams.add(up)
    const early: string[] = []
    client.on('message', (data) => {
      const text = String(data)
      try {
        if ((JSON.parse(text) as { type?: unknown }).type === 'subscribe') conn.subscribed = true
      } catch {
        // Not JSON: passed on as it is.
      }
      const out = options.up === undefined ? text : options.up(text, conn)
      if (out === undefined) return
      if (up.readyState === WebSocket.OPEN) up.send(out)
      else early.push(out)
    })
    up.on('open', () => {
      for (const text of early.splice(0)) up.send(text)
    })
    up.on('message', (data) => {
      const out = options.down === undefined ? String(data) : options.down(String(data), conn)
      if (out === undefined) return
      const send = () => {
        if (client.readyState === WebSocket.OPEN) client.send(out)
      }
      if (options.delayMs === undefined) send()
      else setTimeout(send, options.delayMs)
    })
    up.on('close', (code) => {
      upstreams.delete(up)
      if (client.readyState === WebSocket.OPEN) client.close(sendableClose(code))
    })
    client.on('close', () => up.close())
    up.on('error', () => client.terminate())
    client.on('error', () => up.terminate())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get accepted() {
      return accepted
    },
    dropClients() {
      for (const ws of wss.clients) ws.terminate()
    },
    async close() {
      for (const ws of wss.clients) ws.terminate()
      for (const ws of upstreams) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
