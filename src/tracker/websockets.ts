import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import WebSocket, { WebSocketServer } from 'ws'
import { type BrowserHub, CLOSE_GOING_AWAY } from './browser-hub.ts'
import { decodeBrowserMessage } from '../protocol/browser-message.ts'
import type { FaultLog } from './fault-log.ts'
import type { Ingest } from './ingest.ts'
import type { LiveState } from './live-state.ts'
import { bump, type IngestCounters } from './metrics.ts'
import { type PluginSecrets, pluginAuthorized, presentedSecret } from './plugin-auth.ts'

export interface WebSocketsOptions {
  logger: Logger
  ingest: Ingest
  hub: BrowserHub
  live: LiveState
  counters: IngestCounters
  /** Where faults caught in upgrade and socket callbacks are counted and logged. */
  faults: FaultLog
  secrets: PluginSecrets
  readOnly: boolean
  maxFrameBytes: number
  /** Whether a `/ws/live` upgrade carries a session or internal trust (CONTRACT.md §3, §5). */
  authorizeBrowser: (req: IncomingMessage) => Promise<boolean>
}

/** The WebSocket endpoints attached to a server. */
export interface WebSockets {
  /**
   * Stops accepting upgrades, sends every plugin and browser 1001 Going Away, waits up to
   * {@link SHUTDOWN_CLOSE_MS} for the closing handshakes, then terminates what is left.
   */
  close(): Promise<void>
}

/** Close code for refused auth (RFC 6455 §7.4.1: 1008 Policy Violation), CONTRACT.md §2-3. */
export const CLOSE_POLICY = 1008

/** Close code for a socket whose set-up failed on our side (RFC 6455 §7.4.1: 1011 Internal Error). */
export const CLOSE_INTERNAL_ERROR = 1011

/** How long shutdown waits for the closing handshakes before terminating the sockets. */
export const SHUTDOWN_CLOSE_MS = 1_000

let nextConn = 1

/** Routes HTTP upgrades to the plugin endpoint `/ws/position` and the browser endpoint `/ws/live`. */
export function attachWebSockets(server: Server, o: WebSocketsOptions): WebSockets {
  // No compression: frames are small, and per-message deflate would cost more CPU than bandwidth saved.
  const plugins = new WebSocketServer({
    noServer: true,
    maxPayload: o.maxFrameBytes,
    perMessageDeflate: false,
  })
  const browsers = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false })

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // An 'upgrade' listener that throws ends the process: nothing above it catches.
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (path === '/ws/position') {
        plugins.handleUpgrade(
          req,
          socket,
          head,
          accepted(o, 'plugin_accept', (ws) => acceptPlugin(ws, req, o)),
        )
      } else if (path === '/ws/live') {
        // The session is looked up before the handshake; a refusal is a 1008 close right after it.
        // A reset while the lookup runs must not become an unhandled 'error' event.
        const onEarlyError = (): void => void socket.destroy()
        socket.on('error', onEarlyError)
        o.authorizeBrowser(req)
          .then((authorized) => {
            socket.off('error', onEarlyError)
            browsers.handleUpgrade(
              req,
              socket,
              head,
              accepted(o, 'browser_accept', (ws) => acceptBrowser(ws, socket, o, authorized)),
            )
          })
          .catch((err: unknown) => {
            o.faults.record('browser_upgrade', err)
            socket.destroy()
          })
      } else {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      }
    } catch (err) {
      o.faults.record('ws_upgrade', err)
      socket.destroy()
    }
  }
  server.on('upgrade', onUpgrade)
  return {
    async close() {
      server.off('upgrade', onUpgrade)
      o.hub.closeAll(CLOSE_GOING_AWAY)
      const open = [...plugins.clients, ...browsers.clients]
      // RFC 6455 §7.4.1: 1001, the endpoint is going away. Sockets already closing keep their code.
      for (const ws of open) ws.close(CLOSE_GOING_AWAY, 'server shutting down')
      await closedWithin(open, SHUTDOWN_CLOSE_MS)
      for (const ws of open) ws.terminate()
      plugins.close()
      browsers.close()
    },
  }
}

/** Resolves once every socket has closed, or after `ms`, whichever comes first. */
async function closedWithin(sockets: readonly WebSocket[], ms: number): Promise<void> {
  const pending = sockets.filter((ws) => ws.readyState !== WebSocket.CLOSED)
  if (pending.length === 0) return
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all(pending.map((ws) => new Promise((resolve) => ws.once('close', resolve)))),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms)
    }),
  ])
  clearTimeout(timer)
}

/**
 * An upgrade's accept callback that cannot throw into ws: a fault is recorded under `site` and
 * the half-set-up socket is closed rather than left open with nobody attending it.
 */
function accepted(o: WebSocketsOptions, site: string, accept: (ws: WebSocket) => void) {
  return (ws: WebSocket): void => {
    try {
      accept(ws)
    } catch (err) {
      o.faults.record(site, err)
      ws.close(CLOSE_INTERNAL_ERROR)
    }
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

function acceptBrowser(ws: WebSocket, socket: Duplex, o: WebSocketsOptions, authorized: boolean): void {
  if (!authorized) {
    ws.close(CLOSE_POLICY, 'not authenticated')
    return
  }
  const client = o.hub.add(ws, socket)
  const log = o.logger.child({ component: 'browser', conn: `b${nextConn++}` })
  ws.on('error', (err) => log.debug({ err }, 'browser socket error'))
  const onMessage = (data: Buffer): void => {
    const text = data.toString('utf8')
    const msg = decodeBrowserMessage(text)
    switch (msg.kind) {
      case 'subscribe':
        o.hub.subscribe(client, msg.messageTypes)
        break
      case 'request_dungeon_map': {
        const cached = msg.landblock === null ? undefined : o.live.dungeonMaps.get(msg.landblock)
        o.hub.reply(client, cached ?? { type: 'dungeon_map', landblock: msg.landblock, error: 'not_found' })
        break
      }
      case 'command':
        // CONTRACT.md §3: the browser's message goes to the plugin as it was sent, on whichever
        // instance holds it (issue 11).
        o.ingest
          .sendCommand(msg.playerName, text)
          .then((sent) => {
            if (!sent)
              o.hub.reply(client, {
                type: 'command_error',
                player_name: msg.playerName,
                error: 'not_connected',
              })
          })
          .catch((err: unknown) => o.faults.record('browser_command', err))
        break
      case 'ignored':
        bump(o.counters.browser_messages_ignored, msg.reason)
        log.debug({ reason: msg.reason, bytes: data.length }, 'browser message ignored')
    }
  }
  ws.on('message', o.faults.guard('browser_message', onMessage))
}
