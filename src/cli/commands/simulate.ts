import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { parseInstant } from '../../protocol/time.ts'
import { VirtualClock } from '../../replay/virtual-clock.ts'
import { CaptureWriter } from '../../capture/writer.ts'
import { FleetConnections, runFleet } from '../../fleet/fleet-runner.ts'
import { FleetModel } from '../../fleet/fleet-model.ts'
import { buildInlineProxy } from '../../tee/inline-proxy.ts'
import { recordSimulation } from '../../fleet/record-simulation.ts'
import { DEFAULT_SNAPSHOT_ENDPOINTS } from '../../capture/snapshots.ts'
import { buildTracker } from '../../tracker/build-tracker.ts'
import type { CliContext } from '../program.ts'
import { parseCount, parseDuration, parseSpeed } from './tee-options.ts'

interface SimulateFlags {
  url?: string
  fixture?: string
  characters: string
  seed: string
  speed: string
  duration: string
  start?: string
  snapshotEvery: string
  databaseUrl?: string
}

/** The default fixture start: fixed, so the same flags write the same file. */
const FIXTURE_START = '2026-11-22T08:00:00Z'

/**
 * `simulate --url ws://…/ws/position`: a seeded fleet, live, against any plugin endpoint (secret from
 * `SHARED_SECRET`). `simulate --fixture file`: records a self-contained parity case: the fleet through
 * the inline tee into an in-process primary, all on virtual time, with snapshots of its read endpoints.
 */
export function registerSimulate(program: Command, ctx: CliContext): void {
  program
    .command('simulate')
    .description('a seeded fleet of plugin-shaped characters producing every event type')
    .option('--url <url>', 'live: the plugin endpoint to drive (secret from $SHARED_SECRET)')
    .option('--fixture <file>', 'record a fixture through the tee instead (.ndjson or .ndjson.gz)')
    .option('--characters <n>', 'fleet size', '5')
    .option('--seed <n>', 'PRNG seed', '42')
    .option('--speed <factor>', 'live: simulated ms per real ms', '1')
    .option('--duration <duration>', 'simulated duration', '5m')
    .option('--start <iso>', `fixture: simulated start instant (default ${FIXTURE_START}; live: now)`)
    .option('--snapshot-every <duration>', 'fixture: snapshot interval', '60s')
    .option('--database-url <url>', 'fixture: a scratch PostgreSQL for the primary (default: embedded)')
    .action(async (flags: SimulateFlags) => {
      if ((flags.url === undefined) === (flags.fixture === undefined)) {
        throw new OverlordError(ERR.CONFIG, 'simulate needs exactly one of --url or --fixture')
      }
      const characters = parseCount(flags.characters)
      const seed = parseCount(flags.seed)
      const durationMs = parseDuration(flags.duration)
      const log = ctx.logger.child({ component: 'simulate' })
      const progress = (ms: number, stats: { frames_sent: number; connects: number; refused: number }) =>
        ctx.out(
          `simulate: ${Math.round(ms / 1000)}s of ${Math.round(durationMs / 1000)}s, ${JSON.stringify(stats)}`,
        )

      if (flags.url !== undefined) {
        const startMs = flags.start === undefined ? Date.now() : startOf(flags.start)
        const model = new FleetModel({ seed, characters, startMs })
        const connections = new FleetConnections({
          url: flags.url,
          secret: ctx.env.SHARED_SECRET || undefined,
          logger: log,
        })
        const stats = await runFleet({
          model,
          connections,
          startMs,
          durationMs,
          speed: parseSpeed(flags.speed),
          onProgress: progress,
        })
        ctx.out(`simulate done: ${JSON.stringify(stats)}`)
        return
      }

      const startMs = startOf(flags.start ?? FIXTURE_START)
      const clock = new VirtualClock(startMs)
      const secret = randomBytes(16).toString('hex')
      const primary = await buildTracker({
        databaseUrl: flags.databaseUrl,
        sharedSecret: secret,
        clock,
        logger: log.child({ component: 'primary' }),
        liveCacheMs: 24 * 3_600_000,
      })
      const snapshotEveryMs = parseDuration(flags.snapshotEvery)
      const capture = new CaptureWriter({
        path: flags.fixture as string,
        source: 'simulator',
        clock,
        logger: log,
        secrets: [secret],
        snapshotIntervalMs: snapshotEveryMs,
        meta: { seed, characters, duration_ms: durationMs, through: 'inline tee proxy' },
      })
      await capture.ready()
      const baseUrl = await primary.listen(0, '127.0.0.1')
      const proxy = buildInlineProxy({
        primaryUrl: baseUrl.replace('http', 'ws'),
        capture,
        clock,
        logger: log,
      })
      const proxyUrl = (await proxy.listen(0, '127.0.0.1')).replace('http', 'ws')
      try {
        const stats = await recordSimulation({
          model: new FleetModel({ seed, characters, startMs }),
          pluginUrl: `${proxyUrl}/ws/position`,
          pluginSecret: secret,
          primary: { baseUrl, settle: () => primary.settle() },
          capture,
          setTime: (ms) => clock.set(ms),
          startMs,
          durationMs,
          snapshotEveryMs,
          endpoints: DEFAULT_SNAPSHOT_ENDPOINTS,
          logger: log,
          onProgress: progress,
        })
        await capture.finish({ by_type: stats.by_type, frames: stats.frames_sent })
        ctx.out(`fixture written: ${flags.fixture} (${JSON.stringify(capture.stats)})`)
      } finally {
        await capture.finish()
        await proxy.close()
        await primary.close()
      }
    })
}

function startOf(iso: string): number {
  const micros = parseInstant(iso)
  if (micros === undefined) throw new OverlordError(ERR.CONFIG, `bad --start: ${iso}`)
  return Math.floor(micros / 1000)
}
