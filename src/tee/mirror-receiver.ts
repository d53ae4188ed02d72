import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer } from 'ws'
import type { CaptureWriter } from '../capture/writer.ts'
import { parseEnvelope, splitEnvelopes } from './envelope.ts'
import { secretMatches } from './secret.ts'
import type { ShadowMirror } from './shadow-mirror.ts'
import { listenUrl } from './listen.ts'

/** The path the legacy tee module connects to. */
export const MIRROR_PATH = '/tee'

export interface MirrorReceiverOptions {
  /** The secret the legacy tee presents as `X-Tee-Secret` (its own, not the plugin secret). */
  teeSecret: string
  /** Where frames go; without one the receiver only captures. */
  mirror?: ShadowMirror
  capture?: CaptureWriter
  logger: Logger
  /** Largest message accepted from the sender (a batch), default 16 MiB. */
  maxMessageBytes?: number
}

/** Counters of the receiver side, served at `GET /metrics` next to the mirror's. */
export interface ReceiverCounters {
  senders_connected: number
  senders_refused: number
  envelopes: number
  bad_envelopes: number
  plugin_opens: number
  plugin_closes: number
}

export interface MirrorReceiver {
  readonly server: Server
  readonly counters: ReceiverCounters
  listen(port?: number, host?: string): Promise<string>
  close(): Promise<void>
}

/**
 * The endpoint the live Python tracker's tee sends a copy of every raw plugin frame to (tee protocol,
 * `envelope.ts`). Each sender connection id becomes one shadow connection, keyed by the sender's
 * session so a restarted primary never mixes its connections with the previous run's. The receiver
 * reads as fast as frames come: the shadow side is bounded and drops, so the sender is never
 * back-pressured by a slow shadow.
 */
export function buildMirrorReceiver(o: MirrorReceiverOptions): MirrorReceiver {
  const counters: ReceiverCounters = {
    senders_connected: 0,
    senders_refused: 0,
    envelopes: 0,
    bad_envelopes: 0,
    plugin_opens: 0,
    plugin_closes: 0,
  }
  const log = o.logger.child({ component: 'tee-receiver' })
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: o.maxMessageBytes ?? 16 * 1024 * 1024,
  })
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    if (req.method === 'GET' && path === '/metrics') {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          ...counters,
          mirror: o.mirror?.counters ?? null,
          capture: o.capture?.stats ?? null,
        }),
      )
    } else if (req.method === 'GET' && path === '/health') {
      res.setHeader('content-type', 'application/json')
      res.end('{"status":"ok"}')
    } else {
      res.statusCode = 404
      res.setHeader('content-type', 'application/json')
      res.end('{"detail":"Not Found"}')
    }
  })

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const presented = req.headers['x-tee-secret']
    if (path !== MIRROR_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      return
    }
    if (!secretMatches(typeof presented === 'string' ? presented : undefined, o.teeSecret)) {
      counters.senders_refused += 1
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      counters.senders_connected += 1
      // Until the sender says hello, its connections live in a session of their own.
      let session = randomBytes(4).toString('hex')
      const slog = log.child({ sender: req.socket.remoteAddress })
      slog.info('tee sender connected')
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) {
          counters.bad_envelopes += 1
          return
        }
        for (const line of splitEnvelopes(data.toString('utf8'))) {
          const env = parseEnvelope(line)
          if (env === undefined) {
            counters.bad_envelopes += 1
            continue
          }
          counters.envelopes += 1
          if (env.k === 'hello') {
            session = env.s
            continue
          }
          const conn = `${session}:${env.c}`
          if (env.k === 'frame') {
            o.capture?.frame(conn, env.d, env.t)
            o.mirror?.frame(conn, env.d)
          } else if (env.k === 'open') {
            counters.plugin_opens += 1
            o.capture?.open(conn, env.t)
            o.mirror?.open(conn)
          } else {
            counters.plugin_closes += 1
            o.capture?.close(conn, env.code, env.t)
            o.mirror?.close(conn, env.code)
          }
        }
      })
      ws.on('error', (err) => slog.debug({ err }, 'tee sender socket error'))
      ws.on('close', (code) => {
        counters.senders_connected -= 1
        slog.info({ code }, 'tee sender disconnected')
      })
    })
  })

  return {
    server,
    counters,
    listen: (port = 0, host = '127.0.0.1') => listenUrl(server, port, host),
    async close() {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
