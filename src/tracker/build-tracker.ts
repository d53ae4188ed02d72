import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyBaseLogger, LogController } from 'fastify'
import pino, { type Logger } from 'pino'
import { type EmbeddedDatabase, EMBEDDED_POOL_SIZE, startEmbeddedDatabase } from '../db/embedded.ts'
import type { BusFrame } from '../bus/frame-batch.ts'
import { NatsBus } from '../bus/nats-bus.ts'
import { decodeFrame } from '../protocol/decode-frame.ts'
import type { Micros } from '../protocol/time.ts'
import { createPool, type Db } from '../db/pool.ts'
import { RetentionTask } from '../db/retention.ts'
import { initSchema, type SchemaResult } from '../db/schema.ts'
import { checkWritable, timescaleInstalled } from '../db/schema-check.ts'
import { retryTransient } from '../db/transient.ts'
import { Persistence } from '../db/persistence.ts'
import { withoutCommitted } from '../db/redelivery.ts'
import type { WriteOp } from '../db/write-ops.ts'
import { coerceError, ERR, OverlordError } from '../protocol/errors.ts'
import { queryAjvPlugin } from '../protocol/query-schemas.ts'
import { type Clock, systemClock } from '../protocol/time.ts'
import { AlertDelivery, type AlertTuning } from './alerts.ts'
import { Auth } from './auth.ts'
import { BrowserHub } from './browser-hub.ts'
import { Ingest, writeOps } from './ingest.ts'
import { InventoryForwarder } from './inventory-forwarder.ts'
import { LiveCache } from './live-cache.ts'
import { LiveState } from './live-state.ts'
import { FaultLog } from './fault-log.ts'
import { LoginLimiter, type LoginLimiterOptions } from './login-limiter.ts'
import { newIngestCounters } from './metrics.ts'
import { registerMetricsRoutes } from './prometheus.ts'
import { registerAuthApi } from './routes/auth-api.ts'
import { createClientErrorHandler, frameworkErrors } from './routes/client-errors.ts'
import { detail, registerReadApi } from './routes/read-api.ts'
import { registerStateApi } from './routes/state-api.ts'
import { newInventoryProxyStats, registerInventoryProxy } from './routes/inventory-proxy.ts'
import { normalizeBasePath } from './routes/base-path.ts'
import { registerStaticBundle } from './routes/static-bundle.ts'
import { validationDetail } from './routes/validation-errors.ts'
import { ServerHealthCheck } from './server-health.ts'
import { Sessions, type SessionOptions } from './sessions.ts'
import { attachWebSockets } from './websockets.ts'

/** CONTRACT.md §9: the online window and the /live cache period. */
export const ACTIVE_WINDOW_MS = 30_000
export const LIVE_CACHE_MS = 5_000
export const MAX_FRAME_BYTES = 8 * 1024 * 1024
/**
 * find-my-way answers 404 to a path parameter longer than its 100-character default; the route
 * schemas answer 422 past their own bounds instead. Node's 16 KiB header limit bounds the URL.
 */
const MAX_PARAM_LENGTH = 16 * 1024

/**
 * `shadow` (the default) writes only its own database; `primary` is the tracker after `cutover
 * flip`: the writer of the primary's database `dereth`, on the schema the Python tracker made.
 */
export type TrackerRole = 'shadow' | 'primary'

export interface TrackerOptions {
  role?: TrackerRole
  /** A PostgreSQL URL; without one the tracker runs on an embedded PGlite kept in `dataDir`. */
  databaseUrl?: string
  /** Where the embedded database keeps its data (in memory when omitted). */
  dataDir?: string
  sharedSecret?: string
  sharedSecretLegacy?: string
  /** Connect to an existing database, run no DDL and no writes, refuse ingest. */
  readOnly?: boolean
  skipSchemaInit?: boolean
  clock?: Clock
  logger?: Logger
  buildVersion?: string
  activeWindowMs?: number
  liveCacheMs?: number
  maxFrameBytes?: number
  /** Per-browser backlog limits (see BrowserHub). */
  browserSoftLimitBytes?: number
  browserHardLimitBytes?: number
  browserGraceMs?: number
  /** How long frames gather before one write per browser (BrowserHub). */
  browserCoalesceMs?: number
  /** Side effects towards plugins (commands, share relays); off by default: a shadow must not act (§10). */
  pluginSideEffects?: boolean
  inventoryServiceUrl?: string
  /**
   * Inventory writes (forwarded frames, non-GET `/inv/*`) reach `inventoryServiceUrl` only when
   * true (`INVENTORY_WRITES_ENABLED`); reads are proxied either way (CONTRACT.md §10).
   */
  inventoryWritesEnabled?: boolean
  /** Discord webhook for death and idle alerts (`DISCORD_ACLOG_WEBHOOK`, CONTRACT.md §6). */
  discordWebhookUrl?: string
  /** Post alerts to it; off by default: a shadow only logs and counts them (§10). */
  alertsEnabled?: boolean
  /** Alert delivery bounds (queue, timeouts, retries); tests shorten them. */
  alertTuning?: Partial<AlertTuning>
  /** Timeout of each request proxied to the inventory service (default 10 s). */
  inventoryTimeoutMs?: number
  /**
   * Where a proxy serves this tracker, e.g. `/ts` (`BASE_PATH`): the session cookie's path, and
   * the prefix the served dashboard puts on its absolute URLs. None = the site root.
   */
  basePath?: string
  /** Session cookies (CONTRACT.md §5): `SECRET_KEY`, cookie name, salt, payload field. */
  sessions?: SessionOptions
  /** Login rate limits per client address and per username. */
  loginLimits?: LoginLimiterOptions
  /** The built dashboard served at `GET /*`; none = no static routes. */
  staticDir?: string
  /** URL probed for `/server-health`, and the name it reports. */
  serverHealthUrl?: string
  serverName?: string
  /** How long start-up waits for an unreachable database before failing. */
  startupWaitMs?: number
  /**
   * The bus between instances (`NATS_URL`, issue 11): every instance with the same `natsName`
   * serves the same feed and state, and one of them at a time writes the database.
   */
  natsUrl?: string
  natsName?: string
  /** Writer tuning. */
  writeBatchSize?: number
  writeMaxPending?: number
}

export interface Tracker {
  /** Listens and resolves the base URL, e.g. `http://127.0.0.1:41234`. */
  listen(port?: number, host?: string): Promise<string>
  /** Writes everything queued (the /live cache keeps its own schedule). */
  flush(): Promise<void>
  /** Writes everything queued and refreshes the /live cache now. */
  settle(): Promise<void>
  /** The counters served at `/metrics.json` (and as Prometheus text at `/metrics`). */
  metrics(): Record<string, unknown>
  /** Detections (death, idle) whose delivery lives elsewhere. */
  readonly ingest: Ingest
  readonly db: Db
  close(): Promise<void>
}

/**
 * Builds the TypeScript tracker: database, ingest, browser hub and HTTP API, without listening
 * (fastify's build/listen split). The caller owns `listen` and `close`.
 */
export async function buildTracker(options: TrackerOptions = {}): Promise<Tracker> {
  const logger = options.logger ?? pino({ level: 'silent' })
  const clock = options.clock ?? systemClock
  const readOnly = options.readOnly ?? false
  const role = options.role ?? 'shadow'

  let embedded: EmbeddedDatabase | undefined
  let databaseUrl = options.databaseUrl
  if (databaseUrl === undefined) {
    embedded = await startEmbeddedDatabase(options.dataDir)
    databaseUrl = embedded.connectionString
  }
  const db = createPool({ connectionString: databaseUrl, max: embedded ? EMBEDDED_POOL_SIZE : 6 })
  let schema: SchemaResult | undefined
  try {
    // The database may still be starting beside us (compose, systemd): wait for it a while.
    const ready = async (): Promise<SchemaResult | undefined> => {
      if (readOnly || options.skipSchemaInit) {
        await db.query('SELECT 1')
        return { timescale: await timescaleInstalled(db) }
      }
      return initSchema(db)
    }
    schema = await retryTransient(
      ready,
      (err, attempt) =>
        logger.warn({ component: 'startup', err, attempt }, 'database not reachable yet, retrying'),
      options.startupWaitMs,
    )
  } catch (err) {
    await db.end().catch(() => {})
    await embedded?.close().catch(() => {})
    throw new OverlordError(ERR.DB_UNAVAILABLE, 'database unavailable at start-up', { cause: err })
  }
  let database = 'pglite'
  try {
    database = await checkWritable(db, {
      role,
      readOnly,
      schemaFromElsewhere: options.skipSchemaInit ?? false,
      useCopy: embedded === undefined,
    })
  } catch (err) {
    await db.end().catch(() => {})
    await embedded?.close().catch(() => {})
    throw err
  }

  let bus: NatsBus | undefined
  if (options.natsUrl !== undefined) {
    try {
      bus = await NatsBus.connect({ url: options.natsUrl, name: options.natsName, logger })
    } catch (err) {
      await db.end().catch(() => {})
      await embedded?.close().catch(() => {})
      throw err
    }
  }

  const counters = newIngestCounters()
  const faults = new FaultLog(counters.handler_errors, logger)
  const writer = readOnly
    ? undefined
    : new Persistence({
        db,
        logger,
        batchSize: options.writeBatchSize,
        maxPending: options.writeMaxPending,
        useCopy: embedded === undefined,
        // PGlite runs one statement at a time: pipelining transactions only adds waiting.
        bulkConcurrency: embedded === undefined ? 2 : 1,
      })
  const live = new LiveState()
  const hub = new BrowserHub({
    logger,
    faults,
    softLimitBytes: options.browserSoftLimitBytes,
    hardLimitBytes: options.browserHardLimitBytes,
    graceMs: options.browserGraceMs,
    coalesceMs: options.browserCoalesceMs,
  })
  const inventory = new InventoryForwarder({
    baseUrl: options.inventoryServiceUrl,
    enabled: options.inventoryWritesEnabled ?? false,
    logger,
    counters,
  })
  const ingest = new Ingest({
    clock,
    logger,
    live,
    hub,
    counters,
    faults,
    inventory,
    writer,
    pluginSideEffects: options.pluginSideEffects ?? false,
    bus,
  })
  if (bus !== undefined) {
    /** The writes of frames the bus hands this instance: as the writer, or as an origin it could not take. */
    const eachOp = (frames: readonly BusFrame[], write: (op: WriteOp) => void): void => {
      for (const f of frames) {
        const decoded = decodeFrame(f.text, f.receivedAt as Micros)
        if (decoded.ok) writeOps(decoded.frame, f.meta, write)
      }
    }
    const opsOf = (frames: readonly BusFrame[]): WriteOp[] => {
      const ops: WriteOp[] = []
      eachOp(frames, (op) => ops.push(op))
      return ops
    }
    const enqueue = (op: WriteOp): void => void writer?.enqueue(op)
    await bus.start({
      remote: faults.guard('bus_remote', (frames: BusFrame[], replay: boolean) =>
        ingest.applyRemote(frames, replay),
      ),
      unstored: (frames) => {
        eachOp(frames, enqueue)
      },
    })
    if (writer !== undefined)
      bus.startWriter({
        enqueue(frames, redelivered) {
          if (!redelivered) {
            eachOp(frames, enqueue)
            return undefined
          }
          return retryTransient(
            () => withoutCommitted(db, opsOf(frames)),
            (err, attempt) =>
              logger.warn({ component: 'bus', err, attempt }, 'redelivery check failed, retrying'),
          ).then((ops) => ops.forEach(enqueue))
        },
        flush: () => writer.flush(),
      })
  }
  const alerts = new AlertDelivery({
    ...options.alertTuning,
    webhookUrl: options.discordWebhookUrl,
    enabled: options.alertsEnabled ?? false,
    logger,
    faults,
    suppressed: counters.suppressed,
  })
  alerts.attach(ingest)
  const liveCache = new LiveCache({
    db,
    clock,
    logger,
    activeWindowMs: options.activeWindowMs ?? ACTIVE_WINDOW_MS,
    refreshMs: options.liveCacheMs ?? LIVE_CACHE_MS,
  })
  const serverHealth = new ServerHealthCheck({
    db,
    clock,
    logger,
    url: options.serverHealthUrl,
    serverName: options.serverName ?? 'Coldeve',
    playerCount: () => liveCache.playerCount,
    persist: !readOnly,
  })
  const retention = readOnly
    ? undefined
    : new RetentionTask({ db, clock, logger, timescale: schema?.timescale ?? false })

  const httpLog = logger.child({ component: 'http' }) as FastifyBaseLogger
  const app = Fastify({
    loggerInstance: httpLog,
    // Per-request logs would sit on the hot path; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { plugins: [queryAjvPlugin] },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler: createClientErrorHandler(httpLog),
    frameworkErrors,
  })
  const basePath = normalizeBasePath(options.basePath) ?? ''
  const sessions = new Sessions({ path: `${basePath}/`, ...options.sessions })
  if (sessions.ephemeralKey)
    logger.warn(
      { component: 'auth' },
      'SECRET_KEY is not set: sessions use a random key and end when the tracker restarts',
    )
  const auth = new Auth({ db, clock, sessions })
  await app.register(fastifyCookie)
  const PUBLIC = new Set(['/health', '/api-version', '/login'])
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url
    // The dashboard bundle is public (its login page must load); unmatched paths get their 404.
    if (route === undefined || route === '/*' || PUBLIC.has(route)) return
    // A session cookie or internal trust (CONTRACT.md §5); the admin routes want an admin.
    const who = await auth.principal(req.socket.remoteAddress, req.headers)
    if (who === undefined) return detail(reply, 401, 'Not authenticated')
    req.principal = who
    if (route.startsWith('/api-admin/') && !who.isAdmin)
      return detail(reply, 403, 'Admin privileges required')
  })
  app.setErrorHandler((raw, req, reply) => {
    const invalid = validationDetail(raw, req)
    // A request that fails its schema is the client's mistake, not a failure to log (CONTRACT.md §1).
    if (invalid !== undefined) return reply.code(422).send({ detail: invalid })
    const err = coerceError(raw)
    logger.error({ component: 'http', err }, 'request failed')
    const status = (raw as { statusCode?: number }).statusCode ?? 500
    return detail(reply, status, status >= 500 ? 'Internal Server Error' : err.message)
  })

  // Event-loop delay is the first thing to look at when ingest or fan-out latency grows.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  const inventoryProxy = newInventoryProxyStats()
  loopDelay.enable()
  const metrics = (): Record<string, unknown> => ({
    ...counters,
    browsers: hub.stats.browsers,
    browser_messages_sent: hub.stats.messagesSent,
    browser_slow_disconnects: hub.stats.slowDisconnects,
    persist_pending: writer?.stats.pending ?? 0,
    rows_persisted: writer?.stats.rowsPersisted ?? 0,
    persist_batches: writer?.stats.batches ?? 0,
    persist_retries: writer?.stats.retries ?? 0,
    persist_dropped: writer?.stats.dropped ?? 0,
    persist_rejected: writer?.stats.rejected ?? 0,
    persist_rejected_by_reason: writer?.stats.rejectedByReason ?? {},
    live_cache_refreshed_at: liveCache.refreshedAt,
    live_cache_failures: liveCache.failures,
    read_only: readOnly,
    role,
    database,
    pid: process.pid,
    process_rss_bytes: process.memoryUsage.rss(),
    process_cpu_user_us: process.cpuUsage().user,
    process_cpu_system_us: process.cpuUsage().system,
    event_loop_delay_p50_ms: loopDelay.percentile(50) / 1e6,
    event_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
    event_loop_delay_max_ms: loopDelay.max / 1e6,
    timescale: schema?.timescale ?? null,
    alerts: alerts.stats,
    auth: authStats,
    inventory_proxy: inventoryProxy,
    bus: bus?.stats ?? null,
  })

  app.get('/health', async () => ({ status: 'ok' }))
  app.get('/api-version', async () => ({ version: options.buildVersion ?? 'dev' }))
  registerMetricsRoutes(app, metrics)
  const authStats = registerAuthApi(app, {
    db,
    clock,
    logger,
    auth,
    limiter: new LoginLimiter(options.loginLimits),
    basePath,
    readOnly,
  })
  registerReadApi(app, { db, clock, liveCache })
  registerStateApi(app, { db, clock, live })
  await registerInventoryProxy(
    app,
    {
      baseUrl: options.inventoryServiceUrl,
      timeoutMs: options.inventoryTimeoutMs,
      writesEnabled: options.inventoryWritesEnabled ?? false,
      logger,
    },
    inventoryProxy,
  )
  app.get('/server-health', async () => serverHealth.current)
  if (options.staticDir === undefined) {
    app.setNotFoundHandler((_req, reply) => detail(reply, 404, 'Not Found'))
  } else {
    app.setNotFoundHandler(await registerStaticBundle(app, options.staticDir, { basePath: options.basePath }))
  }

  await app.ready()
  const sockets = attachWebSockets(app.server, {
    logger,
    ingest,
    hub,
    live,
    counters,
    faults,
    readOnly,
    secrets: { current: options.sharedSecret, legacy: options.sharedSecretLegacy },
    maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES,
    authorizeBrowser: async (req) =>
      (await auth.principal(req.socket.remoteAddress, req.headers)) !== undefined,
  })

  await liveCache.refresh()
  liveCache.start()
  retention?.start()
  await serverHealth.load().catch(() => {})
  serverHealth.start()

  return {
    ingest,
    db,
    metrics,
    async listen(port = 0, host = '127.0.0.1') {
      await app.listen({ port, host })
      const address = app.server.address() as AddressInfo
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
      return `http://${shown}:${address.port}`
    },
    async flush() {
      await writer?.flush()
    },
    async settle() {
      await writer?.flush()
      await liveCache.refresh()
    },
    async close() {
      loopDelay.disable()
      liveCache.stop()
      retention?.stop()
      serverHealth.stop()
      await sockets.close()
      // Publishes what it gathered, then, as writer, commits and acknowledges what it took.
      await bus?.close()
      await alerts.close()
      await app.close()
      await writer?.close()
      await db.end()
      await embedded?.close()
    },
  }
}
