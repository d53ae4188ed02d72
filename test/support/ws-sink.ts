import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocketServer, type WebSocket } from 'ws'

/** One connection the sink accepted. */
export interface SinkConnection {
  ws: WebSocket
  headers: IncomingMessage['headers']
  url: string
  frames: string[]
  closeCode: number | undefined
}

export interface WsSinkOptions {
  /** Accept only this `X-Plugin-Secret`; others are closed 1008 after accept, as the tracker does. */
  secret?: string
  /** Never read: sockets are paused so the kernel buffers fill (a slow shadow). */
  stall?: boolean
  /** Answer every frame with this text (a primary that talks back). */
  echo?: (frame: string) => string | undefined
  port?: number
  /** Plain HTTP requests (a primary's read endpoints); 404 without it. */
  http?: (req: IncomingMessage, res: ServerResponse) => void
  /** Refuse the handshake itself with this HTTP status. */
  refuseHandshake?: number
  /** Accept, then drop the TCP connection without a close frame after this many frames. */
  dropAfter?: number
}

/**
 * A real WebSocket server standing in for a primary or a shadow `/ws/position` in tests that do not
 * need a whole tracker: it records what arrives per connection.
 */
export class WsSink {
  readonly connections: SinkConnection[] = []
  readonly server: Server
  readonly #wss: WebSocketServer
  readonly #o: WsSinkOptions

  constructor(options: WsSinkOptions = {}) {
    this.#o = options
    this.server = createServer((req, res) => {
      if (options.http !== undefined) return options.http(req, res)
      res.statusCode = 404
      res.end('{"detail":"Not Found"}')
    })
    this.#wss = new WebSocketServer({
      server: this.server,
      perMessageDeflate: false,
      verifyClient: (_info, done) =>
        options.refuseHandshake === undefined ? done(true) : done(false, options.refuseHandshake),
    })
    this.#wss.on('connection', (ws, req) => {
      const conn: SinkConnection = {
        ws,
        headers: req.headers,
        url: req.url ?? '',
        frames: [],
        closeCode: undefined,
      }
      this.connections.push(conn)
      const presented =
        req.headers['x-plugin-secret'] ??
        new URL(req.url ?? '/', 'http://x').searchParams.get('secret') ??
        undefined
      if (options.secret !== undefined && presented !== options.secret) {
        ws.close(1008, 'invalid plugin secret')
        return
      }
      if (options.stall === true) {
        req.socket.pause()
        return
      }
      ws.on('message', (data: Buffer) => {
        const text = data.toString('utf8')
        conn.frames.push(text)
        if (options.dropAfter !== undefined && conn.frames.length >= options.dropAfter) {
          ws.terminate()
          return
        }
        const answer = options.echo?.(text)
        if (answer !== undefined) ws.send(answer)
      })
      ws.on('close', (code) => {
        conn.closeCode = code
      })
      ws.on('error', () => {})
    })
  }

  async listen(): Promise<string> {
    this.server.listen(this.#o.port ?? 0, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      this.server.once('listening', resolve)
      this.server.once('error', reject)
    })
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  /** Every frame received, over all connections, in arrival order per connection. */
  allFrames(): string[] {
    return this.connections.flatMap((c) => c.frames)
  }

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate()
    this.#wss.close()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs` (a deadline, not an assert on time). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** A port that was free a moment ago (nothing listens on it). */
export async function freePort(): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await new Promise((resolve) => s.once('listening', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise((resolve) => s.close(resolve))
  return port
}
