import { droppedFrames } from '../../tee/mirror-counters.ts'
import type { Command } from 'commander'
import type { Logger } from 'pino'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { type Clock, systemClock } from '../../protocol/time.ts'
import { baselineHistory } from '../../capture/baseline.ts'
import type { RecordedResponse } from '../../capture/format.ts'
import { safeUrl } from '../../capture/redact.ts'
import { CaptureWriter } from '../../capture/writer.ts'
import { buildInlineProxy } from '../../tee/inline-proxy.ts'
import { buildMirrorReceiver, MIRROR_PATH } from '../../tee/mirror-receiver.ts'
import { ShadowMirror } from '../../tee/shadow-mirror.ts'
import { DEFAULT_SNAPSHOT_ENDPOINTS, SnapshotPoller, takeSnapshot } from '../../capture/snapshots.ts'
import { listenFailure } from '../listen-error.ts'
import { type CliContext, EXIT, verdict } from '../program.ts'
import { parseDuration, parseListen, untilStopped } from './tee-options.ts'

interface TeeFlags {
  listen: string
  primary?: string
  shadow?: string
  capture?: string
  snapshotsFrom?: string
  snapshotEvery: string
  endpoint?: string[]
  duration?: string
  /** `capture` only: record a primary that already holds data, its state as the baseline. */
  allowExisting?: boolean
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

interface Baseline {
  t: number
  durationMs: number
  responses: Record<string, RecordedResponse>
}

/**
 * Snapshots the primary before the first frame (format.ts: the baseline). History in it would replay
 * as differences no frame explains, so `capture` refuses such a primary unless `--allow-existing`; a
 * tee's side recording (`tee --capture`) runs beside a primary in service, so it records it and says so.
 */
async function takeBaseline(
  o: {
    baseUrl: string
    endpoints: readonly string[]
    cookie?: string
    clock: Clock
    logger: Logger
    out: (line: string) => void
  },
  refuse: boolean,
): Promise<Baseline> {
  const t = o.clock.now()
  const responses = await takeSnapshot({
    baseUrl: o.baseUrl,
    endpoints: o.endpoints,
    cookie: o.cookie,
    logger: o.logger,
  })
  const durationMs = o.clock.now() - t
  const { held, unreadable } = baselineHistory(responses)
  const primary = safeUrl(o.baseUrl)
  if (refuse && held.length > 0) {
    throw verdict(
      `capture: the primary at ${primary} already holds data (${held.join(', ')}); a replay could not tell that history from what the capture sends. Start from a fresh primary, or pass --allow-existing to record it as the baseline`,
      EXIT.ERROR,
    )
  }
  if (refuse && unreadable.length > 0) {
    throw verdict(
      `capture: could not tell whether the primary at ${primary} already holds data (${unreadable.join(', ')}); a replay could not tell such history from what the capture sends. Check --snapshots-from and PRIMARY_COOKIE, or pass --allow-existing to record what it answered as the baseline`,
      EXIT.ERROR,
    )
  }
  const notes = [
    ...(held.length > 0 ? [`it already holds data (${held.join(', ')})`] : []),
    ...(unreadable.length > 0 ? [`some endpoints could not tell (${unreadable.join(', ')})`] : []),
  ]
  if (notes.length > 0)
    o.out(`capture: recorded the primary at ${primary} as the baseline: ${notes.join('; ')}`)
  return { t, durationMs, responses }
}

/**
 * Runs one tee until stopped. Secrets come from the environment only (never argv, which `ps` shows):
 * `TEE_SECRET` (mirror mode's own secret), `SHADOW_PLUGIN_SECRET` (default `SHARED_SECRET`),
 * `PRIMARY_COOKIE` (a session cookie for the primary's read endpoints, when internal trust does not apply).
 */
async function runTee(
  mode: 'proxy' | 'mirror',
  flags: TeeFlags,
  ctx: CliContext,
  requireCapture: boolean,
): Promise<void> {
  const log = ctx.logger.child({ component: `tee-${mode}` })
  const env = ctx.env
  if (requireCapture && flags.capture === undefined)
    throw new OverlordError(ERR.CONFIG, 'capture needs --out')
  if (mode === 'proxy' && flags.primary === undefined)
    throw new OverlordError(ERR.CONFIG, 'proxy mode needs --primary')
  const teeSecret = env.TEE_SECRET || undefined
  if (mode === 'mirror' && teeSecret === undefined)
    throw new OverlordError(ERR.CONFIG, 'mirror mode needs TEE_SECRET')
  const shadowSecret = env.SHADOW_PLUGIN_SECRET || env.SHARED_SECRET || undefined
  const cookie = env.PRIMARY_COOKIE || undefined
  const clock = systemClock
  const interval = parseDuration(flags.snapshotEvery)
  const endpoints = flags.endpoint ?? DEFAULT_SNAPSHOT_ENDPOINTS
  // Before the writer opens --out: a refusal leaves the file, if one exists, as it was.
  const baseline =
    flags.capture === undefined || flags.snapshotsFrom === undefined
      ? undefined
      : await takeBaseline(
          { baseUrl: flags.snapshotsFrom, endpoints, cookie, clock, logger: log, out: ctx.out },
          requireCapture && flags.allowExisting !== true,
        )

  const mirror =
    flags.shadow === undefined
      ? undefined
      : new ShadowMirror({
          url: flags.shadow,
          secret: shadowSecret,
          logger: log.child({ component: 'shadow-mirror' }),
        })
  const capture =
    flags.capture === undefined
      ? undefined
      : new CaptureWriter({
          path: flags.capture,
          source: mode,
          clock,
          logger: log,
          secrets: [
            teeSecret,
            shadowSecret,
            env.SHARED_SECRET,
            env.SHARED_SECRET_LEGACY,
            cookie,
            cookie?.split('=').slice(1).join('='),
          ],
          primary: flags.snapshotsFrom,
          snapshotIntervalMs: flags.snapshotsFrom === undefined ? undefined : interval,
        })
  const poller =
    capture === undefined || flags.snapshotsFrom === undefined
      ? undefined
      : new SnapshotPoller(
          {
            baseUrl: flags.snapshotsFrom,
            endpoints,
            cookie,
            intervalMs: interval,
            now: () => clock.now(),
            logger: log,
          },
          (t, responses, durationMs) => capture.snapshot(responses, t, durationMs),
        )

  await capture?.ready()
  // Recorded before the server listens, so no frame can come before it.
  if (baseline !== undefined) capture?.baseline(baseline.responses, baseline.t, baseline.durationMs)
  const server =
    mode === 'proxy'
      ? buildInlineProxy({ primaryUrl: flags.primary as string, mirror, capture, clock, logger: log })
      : buildMirrorReceiver({ teeSecret: teeSecret as string, mirror, capture, logger: log })
  const { host, port } = parseListen(flags.listen)
  let url: string
  try {
    url = await server.listen(port, host)
  } catch (err) {
    mirror?.shutdown()
    await capture?.finish()
    throw listenFailure(err, { port, host }, { port: '--listen', host: '--listen' })
  }
  const endpoint =
    mode === 'proxy'
      ? `${url.replace('http', 'ws')}/ws/position`
      : `${url.replace('http', 'ws')}${MIRROR_PATH}`
  log.info({ url: endpoint, shadow: flags.shadow ?? null, capture: flags.capture ?? null }, 'tee listening')
  ctx.out(`tee ${mode} listening on ${endpoint}`)
  poller?.start()

  const progress = setInterval(() => {
    const c = server.counters as unknown as Record<string, number>
    const m = mirror?.counters
    ctx.out(
      `tee ${mode}: ${JSON.stringify({ ...c, shadow_forwarded: m?.frames_forwarded, shadow_dropped: m === undefined ? undefined : droppedFrames(m), shadow_pending: m?.pending, captured: capture?.stats.frames })}`,
    )
  }, 10_000)
  progress.unref()

  await untilStopped(flags.duration === undefined ? undefined : parseDuration(flags.duration))
  clearInterval(progress)
  await poller?.snapshotNow()
  await poller?.stop()
  await server.close()
  mirror?.shutdown()
  await capture?.finish({ tee: server.counters, mirror: mirror?.counters ?? null })
  if (capture !== undefined) ctx.out(`capture written: ${flags.capture} (${JSON.stringify(capture.stats)})`)
}

function teeOptions(cmd: Command, capture: boolean): Command {
  return cmd
    .option('--listen <addr>', 'listen address host:port', '127.0.0.1:8770')
    .option(
      '--primary <url>',
      'proxy mode: the primary, e.g. ws://127.0.0.1:8765 (the plugin path and query are kept)',
    )
    .option('--shadow <url>', "the shadow's plugin endpoint, e.g. ws://127.0.0.1:8766/ws/position")
    .option(capture ? '--out <file>' : '--capture <file>', 'record the stream to NDJSON (.gz to gzip)')
    .option(
      '--snapshots-from <url>',
      "with a capture: the primary's HTTP base URL to sample read endpoints from",
    )
    .option('--snapshot-every <duration>', 'snapshot interval', '30s')
    .option(
      '--endpoint <path>',
      'an endpoint to snapshot (repeatable; {character} expands per player)',
      collect,
    )
    .option('--duration <duration>', 'stop after this long (default: until SIGINT/SIGTERM)')
}

/** `tee proxy|mirror` and `capture proxy|mirror`. */
export function registerTee(program: Command, ctx: CliContext): void {
  const tee = program.command('tee').description('mirror the plugin stream into the shadow (CONTRACT.md §10)')
  const capture = program
    .command('capture')
    .description('record the plugin stream and primary snapshots as a fixture')
  for (const mode of ['proxy', 'mirror'] as const) {
    const what =
      mode === 'proxy'
        ? 'inline WebSocket tee: plugins or nginx connect here, frames go to the primary unchanged'
        : 'receiver for the legacy tracker’s overlord_tee.py (needs TEE_SECRET)'
    teeOptions(tee.command(mode).description(what), false).action((flags: TeeFlags) =>
      runTee(mode, flags, ctx, false),
    )
    teeOptions(capture.command(mode).description(`${what}; records to --out`), true)
      .option(
        '--allow-existing',
        'with --snapshots-from: record a primary that already holds data, its state as the baseline',
      )
      .action((flags: TeeFlags & { out?: string }) =>
        runTee(mode, { ...flags, capture: flags.out }, ctx, true),
      )
  }
}
