import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type WebSocket from 'ws'
import { WebSocketServer } from 'ws'
import type { BrowserHub } from './browser-hub.ts'
import type { Ingest } from './ingest.ts'
import type { LiveState } from './live-state.ts'
import type { IngestCounters } from './metrics.ts'
import { type PluginSecrets, pluginAuthorized, presentedSecret } from './plugin-auth.ts'
import { isInternalRequest } from './trust.ts'

export interface WebSocketsOptions {
  logger: Logger
  ingest: Ingest
  hub: BrowserHub
  live: LiveState
  counters: IngestCounters
  secrets: PluginSecrets
  readOnly: boolean
  maxFrameBytes: number
}

/** Close code for refused auth (RFC 6455 §7.4.1: 1008 Policy Violation), CONTRACT.md §2-3. */
export const CLOSE_POLICY = 1008

let nextConn = 1

/** Routes HTTP upgrades to the plugin endpoint `/ws/position` and the browser endpoint `/ws/live`. */
export function attachWebSockets(server: Server, o: WebSocketsOptions): { close(): void } {
  // No compression: frames are small, and per-message deflate would cost more CPU than bandwidth saved.
  const plugins = new WebSocketServer({
    noServer: true,
    maxPayload: o.maxFrameBytes,
    perMessageDeflate: false,
  })
  const browsers = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false })

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (path === '/ws/position') {
      plugins.handleUpgrade(req, socket, head, (ws) => acceptPlugin(ws, req, o))
    } else if (path === '/ws/live') {
      browsers.handleUpgrade(req, socket, head, (ws) => acceptBrowser(ws, socket, req, o))
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
    }
  }
  server.on('upgrade', onUpgrade)
  return {
    close() {
      server.off('upgrade', onUpgrade)
      for (const ws of plugins.clients) ws.terminate()
      for (const ws of browsers.clients) ws.terminate()
      plugins.close()
      browsers.close()
    },
  }
}

function acceptPlugin(ws: WebSocket, req: IncomingMessage, o: WebSocketsOptions): void {
  if (!pluginAuthorized(o.secrets, presentedSecret(req))) {
    o.counters.plugins_refused += 1
    ws.close(CLOSE_POLICY, 'invalid plugin secret')
    return
  }
  if (o.readOnly) {
    o.counters.plugins_refused += 1
    ws.close(CLOSE_POLICY, 'read-only tracker refuses ingest')
    return
  }
  o.ingest.attach(ws, `p${nextConn++}`)
}

function acceptBrowser(ws: WebSocket, socket: Duplex, req: IncomingMessage, o: WebSocketsOptions): void {
  if (!isInternalRequest(req.socket.remoteAddress, req.headers)) {
    ws.close(CLOSE_POLICY, 'not authenticated')
    return
  }
  const client = o.hub.add(ws, socket)
  const log = o.logger.child({ component: 'browser', conn: `b${nextConn++}` })
  ws.on('error', (err) => log.debug({ err }, 'browser socket error'))
  ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8')
    let msg: Record<string, unknown>
    try {
      const value: unknown = JSON.parse(text)
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return
      msg = value as Record<string, unknown>
    } catch {
      log.debug('browser sent a non-JSON message')
      return
    }
    if (msg.type === 'subscribe' && Array.isArray(msg.message_types)) {
      o.hub.subscribe(
        client,
        msg.message_types.filter((t): t is string => typeof t === 'string'),
      )
    } else if (msg.type === 'request_dungeon_map') {
      const cached = typeof msg.landblock === 'string' ? o.live.dungeonMaps.get(msg.landblock) : undefined
      if (cached !== undefined) ws.send(cached)
      else o.hub.reply(client, { type: 'dungeon_map', landblock: msg.landblock ?? null, error: 'not_found' })
    } else if (typeof msg.player_name === 'string' && typeof msg.command === 'string') {
      if (!o.ingest.sendCommand(msg.player_name, text)) {
        o.hub.reply(client, { type: 'command_error', player_name: msg.player_name, error: 'not_connected' })
      }
    }
  })
}
