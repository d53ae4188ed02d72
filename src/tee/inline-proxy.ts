import { isSendableClose } from '../util/close-codes.ts'
import { createServer, type IncomingMessage, type Server, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import WebSocket, { WebSocketServer } from 'ws'
import { coerceError } from '../protocol/errors.ts'
import type { Clock } from '../protocol/time.ts'
import type { CaptureWriter } from '../capture/writer.ts'
import type { ShadowMirror } from './shadow-mirror.ts'
import { listenUrl } from './listen.ts'

export interface InlineProxyOptions {
  /** The primary's plugin endpoint base, e.g. `ws://127.0.0.1:8765`; the plugin's path and query are kept. */
  primaryUrl: string
  mirror?: ShadowMirror
  capture?: CaptureWriter
  clock: Clock
  logger: Logger
  /** Same limit as the tracker (CONTRACT.md §2), default 8 MiB. */
  maxFrameBytes?: number
  /** The only path proxied (default `/ws/position`): browsers' `/ws/live` must never be mirrored as plugins. */
  pluginPath?: string
}

/** Counters of the primary path, served at `GET /metrics`. */
export interface ProxyCounters {
  plugins_connected: number
  plugins_total: number
  primary_refused: number
  primary_unreachable: number
  frames_to_primary: number
  frames_to_plugin: number
  /**
   * Plugin frames sent as binary: relayed to the primary, but never handed to the mirror (it carries
   * text frames only) nor captured, so they are not in the mirror's `frames_in`.
   */
  binary_not_mirrored: number
  /** Times a side stopped reading because the other side's send buffer was over the high-water mark. */
  backpressure_pauses: number
}

export interface InlineProxy {
  readonly server: Server
  readonly counters: ProxyCounters
  listen(port?: number, host?: string): Promise<string>
  close(): Promise<void>
}

const HOP_HEADERS = new Set([
  'host',
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-accept',
  'content-length',
  'transfer-encoding',
])

let nextConn = 1

/** Past this many unsent bytes towards one side, the other side is paused (TCP back-pressure passes through). */
const HIGH_WATER_BYTES = 1024 * 1024
const LOW_WATER_BYTES = 256 * 1024

/**
 * Sends one message on `to` and, when `to` falls behind, stops reading `from` until it drained: a slow
 * primary slows its plugin exactly as a direct connection would, instead of the proxy buffering without
 * bound.
 */
function relay(
  from: WebSocket,
  to: WebSocket,
  data: WebSocket.RawData,
  isBinary: boolean,
  counters: ProxyCounters,
): void {
  to.send(data, { binary: isBinary }, () => {
    if (from.isPaused && to.bufferedAmount <= LOW_WATER_BYTES) from.resume()
  })
  if (to.bufferedAmount > HIGH_WATER_BYTES && !from.isPaused) {
    counters.backpressure_pauses += 1
    from.pause()
  }
}

/**
 * The inline tee: plugins (or nginx) connect here instead of to the primary. Each plugin connection
 * is only accepted once the primary accepted its twin, with the plugin's own path, query and headers
 * (so its auth passes through); a primary that refuses the handshake, closes or drops the socket is
 * mirrored back to the plugin. Frames go both ways unchanged and in order; plugin→server frames are
 * also handed to the shadow mirror and the capture, which are synchronous and bounded, so a shadow that
 * is down, slow or refusing costs the primary path nothing.
 */
export function buildInlineProxy(o: InlineProxyOptions): InlineProxy {
  const counters: ProxyCounters = {
    plugins_connected: 0,
    plugins_total: 0,
    primary_refused: 0,
    primary_unreachable: 0,
    frames_to_primary: 0,
    frames_to_plugin: 0,
    binary_not_mirrored: 0,
    backpressure_pauses: 0,
  }
  const log = o.logger.child({ component: 'tee-proxy' })
  const maxPayload = o.maxFrameBytes ?? 8 * 1024 * 1024
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload })
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    res.setHeader('content-type', 'application/json')
    if (req.method === 'GET' && path === '/metrics') {
      res.end(
        JSON.stringify({
          ...counters,
          mirror: o.mirror?.counters ?? null,
          capture: o.capture?.stats ?? null,
        }),
      )
    } else {
      res.statusCode = 404
      res.end('{"detail":"Not Found"}')
    }
  })
  const upstreams = new Set<WebSocket>()

  const pluginPath = o.pluginPath ?? '/ws/position'
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== pluginPath) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      return
    }
    const conn = `x${nextConn++}`
    const clog = log.child({ conn })
    const target = new URL(req.url ?? '/', o.primaryUrl)
    const presentedSecret = req.headers['x-plugin-secret']
    if (typeof presentedSecret === 'string') o.capture?.redactor.add(presentedSecret)
    o.capture?.redactor.add(target.searchParams.get('secret') ?? undefined)

    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_HEADERS.has(name)) continue
      headers[name] = Array.isArray(value) ? value.join(', ') : value
    }
    const peer = req.socket.remoteAddress ?? ''
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${peer}` : peer

    let upstream: WebSocket
    try {
      upstream = new WebSocket(target, {
        headers,
        perMessageDeflate: false,
        maxPayload,
        handshakeTimeout: 10_000,
      })
    } catch (err) {
      counters.primary_unreachable += 1
      clog.warn({ err: coerceError(err) }, 'primary url unusable')
      socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n')
      return
    }
    upstreams.add(upstream)
    // Frames the primary sends between its accept and ours are held, in order.
    const early: { data: WebSocket.RawData; isBinary: boolean }[] = []
    let plugin: WebSocket | undefined
    let handshakeDone = false
    socket.on('error', () => upstream.terminate())
    const abort = (): void => {
      if (!handshakeDone) upstream.terminate()
    }
    socket.once('close', abort)

    upstream.on('unexpected-response', (_r, res) => {
      handshakeDone = true
      counters.primary_refused += 1
      const status = res.statusCode ?? 502
      clog.info({ status }, 'primary refused the plugin handshake')
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n\r\n`)
      upstream.terminate()
      res.resume()
    })
    upstream.on('error', (err) => {
      if (!handshakeDone) {
        handshakeDone = true
        counters.primary_unreachable += 1
        clog.warn({ err }, 'primary unreachable')
        socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n')
        return
      }
      clog.debug({ err }, 'primary socket error')
    })
    upstream.on('message', (data, isBinary) => {
      counters.frames_to_plugin += 1
      if (plugin === undefined) early.push({ data, isBinary })
      else if (plugin.readyState === WebSocket.OPEN) relay(upstream, plugin, data, isBinary, counters)
    })
    upstream.on('close', (code, reason) => {
      upstreams.delete(upstream)
      if (plugin === undefined) {
        if (!handshakeDone) socket.destroy()
        return
      }
      // Mirror the primary's close to the plugin (a 1008 refusal stays a 1008).
      if (plugin.readyState === WebSocket.OPEN) {
        if (isSendableClose(code)) plugin.close(code, reason)
        else plugin.terminate()
      }
    })
    upstream.on('open', () => {
      handshakeDone = true
      socket.off('close', abort)
      if (socket.destroyed) {
        upstream.terminate()
        return
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        plugin = ws
        counters.plugins_connected += 1
        counters.plugins_total += 1
        o.capture?.open(conn)
        o.mirror?.open(conn)
        for (const m of early.splice(0)) ws.send(m.data, { binary: m.isBinary })
        if (upstream.readyState !== WebSocket.OPEN) {
          ws.close(1011)
        }
        ws.on('message', (data: Buffer, isBinary) => {
          // Stamped before the forward, so a recorded receive time never trails the primary's own.
          const receivedAt = o.capture === undefined ? 0 : o.clock.now()
          if (upstream.readyState === WebSocket.OPEN) {
            relay(ws, upstream, data, isBinary, counters)
            counters.frames_to_primary += 1
          }
          if (isBinary) {
            counters.binary_not_mirrored += 1
          } else if (o.mirror !== undefined || o.capture !== undefined) {
            // After the primary write: the copy must never delay the original.
            const text = data.toString('utf8')
            o.mirror?.frame(conn, text)
            o.capture?.frame(conn, text, receivedAt)
          }
        })
        ws.on('error', (err) => clog.debug({ err }, 'plugin socket error'))
        ws.on('close', (code, reason) => {
          counters.plugins_connected -= 1
          o.mirror?.close(conn, code)
          o.capture?.close(conn, code)
          if (upstream.readyState === WebSocket.OPEN) {
            if (isSendableClose(code)) upstream.close(code, reason)
            else upstream.terminate()
          } else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate()
        })
      })
    })
  })

  return {
    server,
    counters,
    listen: (port = 0, host = '127.0.0.1') => listenUrl(server, port, host),
    async close() {
      for (const ws of wss.clients) ws.terminate()
      for (const ws of upstreams) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
