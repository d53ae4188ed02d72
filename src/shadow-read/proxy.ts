import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { ProxyServer } from 'http-proxy-3'
import type { Logger } from 'pino'
import type { ShadowReadWindow } from '../compare/ledger.ts'
import type { Manifest } from '../compare/manifest.ts'
import type { CompareRules } from '../compare/rules.ts'
import { coerceError } from '../protocol/errors.ts'
import { LogThrottle } from '../protocol/log-throttle.ts'
import { listenUrl } from '../tee/listen.ts'
import type { RawAnswer } from './judge.ts'
import { type EndpointMatch, RouteMap } from './route-map.ts'
import { MirrorClient } from './mirror-client.ts'
import type { MirrorOutcome } from './mirror-worker.ts'
import { PrimaryTap } from './tap.ts'
import { WindowStats } from './window-stats.ts'

export interface ShadowReadOptions {
  /** The primary's base URL (`http://127.0.0.1:8765`): every request is answered from it. */
  primaryUrl: string
  /** The shadow's base URL (`http://127.0.0.1:8766`): API GETs are mirrored there. */
  shadowUrl: string
  rules: CompareRules
  manifest: Manifest
  logger: Logger
  /** Share of API GETs mirrored, 0..1 (default 1). */
  sample?: number
  /** Mirrors waiting for a shadow connection, at most (default 1 000). */
  queue?: number
  /** Requests to the shadow at once (default 8). */
  concurrency?: number
  /** From the user's request to the shadow's last byte (default 2 s). */
  shadowTimeoutMs?: number
  /** Answers larger than this are not compared (default 16 MiB). */
  maxBodyBytes?: number
  /** Mismatch examples kept per route and window (default 5). */
  examplesPerRoute?: number
  /** Messages (mirrors, answers, history feeds) on their way to the mirror's thread, at most (default 256). */
  mirrorBacklog?: number
  /** How long a pair waits for the primary's next read of its URL to bracket it (default 5 s). */
  secondReadMs?: number
  /** For tests: the sampling draw (default Math.random). */
  random?: () => number
  now?: () => number
}

export interface ShadowReadProxy {
  readonly server: Server
  listen(port?: number, host?: string): Promise<string>
  /** Closes the current window (its figures) and starts the next. */
  takeWindow(): ShadowReadWindow
  /** Resolves when no mirror and no verdict is under way, or after `timeoutMs`. */
  idle(timeoutMs?: number): Promise<void>
  /**
   * Stops accepting, lets requests under way finish (a few seconds at most), waits for their
   * mirrors and verdicts (the shadow timeout at most), and returns the last window.
   */
  close(): Promise<ShadowReadWindow>
}

/** Longer than nginx's upstream keepalive_timeout (60 s): nginx never reuses a connection closed here. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000
/** Idle connections to the primary are dropped before a server with a 5 s keep-alive (uvicorn) drops them. */
const PRIMARY_IDLE_MS = 4_000
const CLOSE_GRACE_MS = 5_000

/** `X-Forwarded-For` as nginx's `$proxy_add_x_forwarded_for` makes it: the peer appended. */
export function forwardedFor(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress ?? 'unknown'
  const prior = req.headers['x-forwarded-for']
  const list = Array.isArray(prior) ? prior.join(', ') : prior
  return list === undefined || list === '' ? peer : `${list}, ${peer}`
}

/**
 * The shadow-read proxy (issue 10 §1): sits where nginx sends the live API. Every request is
 * answered from the primary through http-proxy-3, status, headers and bytes as the primary sent
 * them, never waiting on anything else; WebSocket upgrades (`/ws/live`) are tunnelled to the
 * primary. A sampled share of API GETs is also sent to the shadow at the same moment, through a
 * bounded queue, with the user's cookie; the two answers are judged by the comparison engine on
 * its own thread and counted per route in {@link WindowStats}.
 */
export function buildShadowReadProxy(options: ShadowReadOptions): ShadowReadProxy {
  const log = options.logger.child({ component: 'shadow-read' })
  const now = options.now ?? Date.now
  const random = options.random ?? Math.random
  const sample = options.sample ?? 1
  const queue = options.queue ?? 1000
  const concurrency = options.concurrency ?? 8
  const shadowTimeoutMs = options.shadowTimeoutMs ?? 2000
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024
  const routes = new RouteMap(options.manifest)
  const stats = new WindowStats(
    {
      primary: options.primaryUrl,
      shadow: options.shadowUrl,
      sample,
      limits: { queue, concurrency, shadowTimeoutMs, maxBodyBytes },
      examplesPerRoute: options.examplesPerRoute ?? 5,
    },
    now,
  )
  /** Mirrored reads in hand: where each outcome is counted. */
  const open = new Map<number, { label: string; url: string; at: number }>()
  let nextId = 1
  const mirrors = new MirrorClient({
    rules: options.rules,
    manifest: options.manifest,
    shadow: { url: options.shadowUrl, concurrency, queue, timeoutMs: shadowTimeoutMs },
    maxBodyBytes,
    maxBacklog: options.mirrorBacklog ?? 256,
    secondReadMs: options.secondReadMs ?? 5_000,
    logger: log,
    onOutcome: (id, outcome) => {
      const m = open.get(id)
      if (m === undefined) return
      open.delete(id)
      countOutcome(m.label, m.url, m.at, outcome)
    },
  })
  const countOutcome = (label: string, url: string, at: number, o: MirrorOutcome): void => {
    if (o.kind === 'dropped') stats.dropped(label, 'queue')
    else if (o.kind === 'unavailable') stats.shadowError(label, 'unavailable')
    else {
      stats.mirrored(label)
      if (o.kind === 'shadow-error') stats.shadowError(label, o.error)
      else if (o.kind === 'uncomparable') stats.primaryUncomparable(label)
      else if (o.kind === 'judge-dropped') {
        log.debug({ url, reason: o.reason }, 'pair not judged')
        stats.dropped(label, 'judge')
      } else stats.verdict(label, url, at, o.verdict)
    }
  }
  const agent = new Agent({ keepAlive: true, timeout: PRIMARY_IDLE_MS })
  const proxy = new ProxyServer({
    target: options.primaryUrl,
    agent,
    ws: true,
    preserveHeaderKeyCase: true,
  })
  const taps = new WeakMap<IncomingMessage, PrimaryTap>()
  const tunnels = new Set<Duplex>()

  const feed = (endpoint: EndpointMatch, url: string, answer: RawAnswer | undefined): void => {
    if (answer !== undefined && !mirrors.feed(endpoint.name, url, answer)) stats.historySkipped()
  }

  /**
   * A mirrored read: the GET is posted to the mirror's thread at once (the shadow is read at the
   * same moment as the primary), the user's answer follows when it has streamed.
   */
  const mirror = (
    endpoint: EndpointMatch,
    url: string,
    req: IncomingMessage,
    at: number,
  ): PrimaryTap | undefined => {
    const label = endpoint.name
    if (mirrors.paused(at)) {
      // A dead shadow costs nothing: nothing posted, no copy of the answer.
      stats.shadowError(label, 'unavailable')
      return undefined
    }
    const headers: Record<string, string> = {
      accept: req.headers.accept ?? 'application/json',
      'x-forwarded-for': req.headers['x-forwarded-for'] as string,
    }
    if (req.headers.cookie !== undefined) headers.cookie = req.headers.cookie
    const proto = req.headers['x-forwarded-proto']
    if (typeof proto === 'string') headers['x-forwarded-proto'] = proto
    const id = nextId++
    if (!mirrors.mirror(id, label, url, headers)) {
      stats.dropped(label, 'judge')
      return undefined
    }
    open.set(id, { label, url, at })
    return new PrimaryTap(maxBodyBytes, at, (answer) => mirrors.primary(id, answer))
  }

  const throttle = new LogThrottle()
  const onPrimaryError = (err: Error, req: IncomingMessage, res: ServerResponse | Socket): void => {
    taps.get(req)?.fail()
    const count = throttle.note('primary-error')
    if (count > 0) log.warn({ err, url: req.url, count }, 'primary unreachable (502 to the user)')
    if (!('writeHead' in res)) {
      res.destroy()
      return
    }
    if (res.headersSent) res.destroy()
    else {
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end('{"detail":"primary not reachable"}')
    }
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const at = now()
    const url = req.url ?? '/'
    const endpoint = routes.endpointOf(url)
    const label = endpoint?.name ?? routes.labelOf(url)
    stats.request(label, endpoint !== undefined)
    // Never internal trust through here (CONTRACT.md §5), for the primary as for the shadow.
    req.headers['x-forwarded-for'] = forwardedFor(req)
    let tap: PrimaryTap | undefined
    if (req.method !== 'GET') stats.notCompared(label, endpoint !== undefined, 'method')
    else if (endpoint === undefined) stats.notCompared(label, false, 'no-endpoint')
    else if (sample > 0 && random() < sample) tap = mirror(endpoint, url, req, at)
    else {
      stats.sampledOut(label)
      // The user's answer still tells the judge what the primary showed (lag pairing).
      if (sample > 0) tap = new PrimaryTap(maxBodyBytes, at, (answer) => feed(endpoint, url, answer))
    }
    if (tap !== undefined) {
      taps.set(req, tap)
      res.once('close', () => tap.fail())
    }
    proxy.web(req, res, {}, (err) => onPrimaryError(err, req, res))
  }

  // Every proxy call has its callback; anything else the library reports is logged, never thrown.
  proxy.on('error', (err) => {
    const count = throttle.note('proxy-error')
    if (count > 0) log.warn({ err, count }, 'proxy error')
  })
  proxy.on('proxyRes', (proxyRes, req) => {
    try {
      taps.get(req)?.attach(proxyRes)
    } catch (err) {
      log.error({ err: coerceError(err) }, 'tap failed')
    }
  })

  const server = createServer(onRequest)
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '/'
    const endpoint = routes.endpointOf(url)
    const label = endpoint?.name ?? routes.labelOf(url)
    stats.request(label, endpoint !== undefined)
    stats.notCompared(label, endpoint !== undefined, 'upgrade')
    req.headers['x-forwarded-for'] = forwardedFor(req)
    tunnels.add(socket)
    socket.once('close', () => tunnels.delete(socket))
    socket.on('error', () => socket.destroy())
    proxy.ws(req, socket, head, {}, (err) => onPrimaryError(err, req, socket as Socket))
  })

  const idle = (timeoutMs = shadowTimeoutMs + 1000): Promise<void> => mirrors.settle(timeoutMs)

  return {
    server,
    listen: (port = 0, host = '127.0.0.1') => listenUrl(server, port, host),
    takeWindow: () => stats.take(),
    idle,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      for (const socket of tunnels) socket.destroy()
      await Promise.race([closed, sleep(CLOSE_GRACE_MS)])
      server.closeAllConnections()
      // The mirrors of the last requests: each ends by its deadline.
      await idle(shadowTimeoutMs + 1000)
      const last = stats.take()
      await mirrors.close()
      agent.destroy()
      proxy.close()
      return last
    },
  }
}
