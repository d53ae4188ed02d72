import type { Command } from 'commander'
import { ensureDatabase } from '../../db/pool.ts'
import { buildTracker } from '../../tracker/build-tracker.ts'
import { listenFailure } from '../listen-error.ts'
import type { CliContext } from '../program.ts'
import { DEFAULT_PORT, trackerConfigFromEnv } from '../tracker-config.ts'

/** How long shutdown waits for queued writes before giving up on them. */
const SHUTDOWN_GRACE_MS = 15_000

/** `overlord-ts serve`: runs the tracker until SIGINT/SIGTERM. */
export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the TypeScript tracker (configured by the legacy environment names, CONTRACT.md §9)')
    .option('-p, --port <port>', `listen port (default: $PORT or ${DEFAULT_PORT})`)
    .option('--host <host>', 'listen address (default: $HOST or 127.0.0.1)')
    .action(async (opts: { port?: string; host?: string }) => {
      const config = trackerConfigFromEnv({ ...ctx.env, ...(opts.port ? { PORT: opts.port } : {}) })
      const log = ctx.logger.child({ component: 'serve' })
      if (config.createDatabase !== undefined && config.tracker.databaseUrl !== undefined) {
        await ensureDatabase(config.tracker.databaseUrl, config.createDatabase)
      }
      if (config.tracker.sharedSecret === undefined)
        log.warn('SHARED_SECRET is not set: every plugin is refused')
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
        { url, embedded: config.tracker.databaseUrl === undefined, readOnly: config.tracker.readOnly },
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
          'shutdown timed out with writes still pending: they are lost',
        )
        process.exit(1)
      }, SHUTDOWN_GRACE_MS)
      await tracker.close()
      clearTimeout(timer)
    })
}
