import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import type { Command } from 'commander'
import type { Logger } from 'pino'
import { ensureDatabase } from '../../db/pool.ts'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { buildTracker } from '../../tracker/build-tracker.ts'
import { listenFailure } from '../listen-error.ts'
import type { CliContext } from '../program.ts'
import { DEFAULT_PORT, type ServeConfig, trackerConfigFromEnv } from '../tracker-config.ts'

/** How long shutdown waits for queued writes before giving up on them. */
const SHUTDOWN_GRACE_MS = 15_000
/** A worker that dies is started again after this long (not in a tight loop if it keeps dying). */
const RESPAWN_DELAY_MS = 1_000

interface ServeOptions {
  port?: string
  host?: string
  workers?: string
}

/** `overlord-ts serve`: runs the tracker until SIGINT/SIGTERM, as one process or `--workers N`. */
export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the TypeScript tracker (configured by the legacy environment names, CONTRACT.md §9)')
    .option('-p, --port <port>', `listen port (default: $PORT or ${DEFAULT_PORT})`)
    .option('--host <host>', 'listen address (default: $HOST or 127.0.0.1)')
    .option(
      '-w, --workers <n>',
      'tracker processes sharing the port over the NATS bus (default: the core count with NATS_URL, else 1)',
    )
    .action(async (opts: ServeOptions) => {
      const config = trackerConfigFromEnv({ ...ctx.env, ...(opts.port ? { PORT: opts.port } : {}) })
      const workers = workerCount(opts.workers, config)
      if (workers > 1 && cluster.isPrimary) return superviseWorkers(workers, config, ctx.logger)
      return serveOne(config, opts, ctx)
    })
}

/**
 * `--workers`: more than one process needs the bus (they share one fleet's state over it) and a
 * PostgreSQL server (the embedded database is one process's).
 */
function workerCount(text: string | undefined, config: ServeConfig): number {
  const bus = config.tracker.natsUrl !== undefined
  if (text === undefined) return bus && config.tracker.databaseUrl !== undefined ? availableParallelism() : 1
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new OverlordError(ERR.CONFIG, `bad --workers: ${text}`)
  if (n > 1 && !bus)
    throw new OverlordError(
      ERR.CONFIG,
      `--workers ${n} needs NATS_URL: the workers share the fleet's state over NATS (README "Scale-out")`,
    )
  if (n > 1 && config.tracker.databaseUrl === undefined)
    throw new OverlordError(
      ERR.CONFIG,
      `--workers ${n} needs DATABASE_URL: the embedded database serves one process`,
    )
  return n
}

/**
 * The cluster's primary: listens on nothing itself, hands connections to `n` workers in turn
 * (Node's round-robin), starts a worker that dies again, and passes SIGTERM/SIGINT on.
 */
async function superviseWorkers(n: number, config: ServeConfig, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'serve', role: 'supervisor' })
  let stopping = false
  let firstFailure: number | undefined
  const listening = new Set<Worker>()
  const start = (): Worker => {
    const worker = cluster.fork()
    worker.once('listening', () => listening.add(worker))
    worker.once('exit', (code, signal) => {
      const wasUp = listening.delete(worker)
      if (stopping) return
      if (!wasUp) {
        // It never came up (NATS or the database refused it, bad settings): its own line said why.
        firstFailure ??= code || 2
        log.error({ pid: worker.process.pid, code, signal }, 'worker failed to start; stopping')
        void stop()
        return
      }
      log.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another')
      setTimeout(() => {
        if (!stopping) start()
      }, RESPAWN_DELAY_MS)
    })
    return worker
  }
  let stopped: () => void = () => {}
  const allStopped = new Promise<void>((resolve) => {
    stopped = resolve
  })
  /** Stops every worker, once, whoever asks (a signal, or a worker that failed to start). */
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    for (const w of alive) w.process.kill('SIGTERM')
    await Promise.all(alive.map((w) => (w.isDead() ? undefined : once(w, 'exit'))))
    stopped()
  }
  const onSignal = (): void => void stop()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  // The first worker alone first: a start-up failure (bus, database, settings) is said once, and
  // schema set-up never runs twice at the same time.
  const first = start()
  await Promise.race([once(first, 'listening'), once(first, 'exit')])
  if (!stopping) {
    for (let i = 1; i < n; i++) start()
    log.info({ workers: n, port: config.port, nats: config.tracker.natsUrl }, 'supervising tracker workers')
  }
  await allStopped
  if (firstFailure !== undefined) process.exitCode = firstFailure
}

/** One tracker process: the whole service, or one worker of `--workers`. */
async function serveOne(config: ServeConfig, opts: ServeOptions, ctx: CliContext): Promise<void> {
  const log = ctx.logger.child({
    component: 'serve',
    ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}),
  })
  if (config.createDatabase !== undefined && config.tracker.databaseUrl !== undefined) {
    await ensureDatabase(config.tracker.databaseUrl, config.createDatabase)
  }
  if (config.tracker.sharedSecret === undefined) log.warn('SHARED_SECRET is not set: every plugin is refused')
  const tracker = await buildTracker({ ...config.tracker, logger: ctx.logger })
  const host = opts.host ?? config.host
  let url: string
  try {
    url = await tracker.listen(config.port, host)
  } catch (err) {
    // The pool, timers and sockets would keep a process that has failed running: close them first.
    await tracker.close()
    throw listenFailure(err, { port: config.port, host }, { port: 'PORT/--port', host: 'HOST/--host' })
  }
  log.info(
    {
      url,
      embedded: config.tracker.databaseUrl === undefined,
      readOnly: config.tracker.readOnly,
      bus: config.tracker.natsUrl ?? null,
    },
    'tracker listening',
  )
  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  log.info('shutting down')
  // A database that stays away would keep the writer retrying forever: bound the wait,
  // and say how much is lost rather than hanging or exiting quietly.
  const timer = setTimeout(() => {
    log.error(
      { pending: tracker.metrics().persist_pending, waitedMs: SHUTDOWN_GRACE_MS },
      config.tracker.natsUrl === undefined
        ? 'shutdown timed out with writes still pending: they are lost'
        : 'shutdown timed out with writes still pending: unacknowledged, they go to the next writer on the bus',
    )
    process.exit(1)
  }, SHUTDOWN_GRACE_MS)
  await tracker.close()
  clearTimeout(timer)
}
