import type { Command } from 'commander'
import { recordShadowRead, type ShadowReadWindow } from '../../compare/ledger.ts'
import { loadManifest } from '../../compare/manifest.ts'
import { loadRules } from '../../compare/rules.ts'
import { coerceError, ERR, OverlordError } from '../../protocol/errors.ts'
import { buildShadowReadProxy } from '../../shadow-read/proxy.ts'
import { listenFailure } from '../listen-error.ts'
import type { CliContext } from '../program.ts'
import { parseDuration, parseListen, untilStopped } from './tee-options.ts'

interface ShadowReadFlags {
  listen: string
  primary: string
  shadow: string
  sample: string
  queue: string
  concurrency: string
  shadowTimeout: string
  maxBody: string
  examples: string
  window: string
  duration?: string
  reports: string
  rules: string
  waivers: string
  endpoints: string
}

const bad = (message: string): never => {
  throw new OverlordError(ERR.CONFIG, message)
}

function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < min) {
    bad(`${flag} ${text}: use a whole number of at least ${min}`)
  }
  return n
}

function share(flag: string, text: string): number {
  const n = Number(text)
  if (text.trim() === '' || !(n >= 0 && n <= 1))
    bad(`${flag} ${text}: use a share between 0 and 1 (0.1 = one read in ten)`)
  return n
}

function httpUrl(flag: string, text: string): string {
  let url: URL | undefined
  try {
    url = new URL(text)
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    bad(`${flag} ${text}: not an http(s) URL (e.g. http://127.0.0.1:8765)`)
  }
  return text.replace(/\/$/, '')
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2 }

/** `16777216`, `512KiB`, `16MiB` (also `k`, `m`). */
function bytes(flag: string, text: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim())
  const unit = BYTE_UNITS[m?.[2]?.toLowerCase() ?? 'x']
  if (m === null || unit === undefined || Number(m[1]) === 0) bad(`${flag} ${text}: use a size such as 16MiB`)
  return Number(m![1]) * unit!
}

/** One log record and one stdout line per window: its totals, and the routes that mismatched. */
function summary(w: ShadowReadWindow) {
  const dropped = w.routes.reduce((n, r) => n + r.dropped.queue + r.dropped.judge, 0)
  const shadowErrors = w.routes.reduce(
    (n, r) => n + Object.values(r.shadowErrors).reduce((a, b) => a + (b ?? 0), 0),
    0,
  )
  return {
    window: w.id,
    requests: w.requests,
    compared: w.compared,
    clean: w.clean,
    mismatched: w.mismatched,
    dropped,
    shadowErrors,
    mismatchedRoutes: w.routes.filter((r) => r.mismatched > 0).map((r) => r.route),
  }
}

/** `shadow-read` (issue 10 §1). */
export function registerShadowRead(program: Command, ctx: CliContext): void {
  const env = ctx.env
  program
    .command('shadow-read')
    .description(
      "users' reads: answered by the primary untouched, API GETs mirrored to the shadow in the background and compared",
    )
    .option('--listen <addr>', 'listen address host:port (where nginx sends the API)', '127.0.0.1:8768')
    .option('--primary <url>', 'the primary (Python) base URL', env.PRIMARY_URL ?? 'http://127.0.0.1:8765')
    .option('--shadow <url>', 'the shadow (TypeScript) base URL', env.SHADOW_URL ?? 'http://127.0.0.1:8766')
    .option('--sample <share>', 'share of API GETs mirrored, 0..1', '1')
    .option('--queue <n>', 'mirrors waiting for the shadow, at most (past it: dropped, counted)', '1000')
    .option('--concurrency <n>', 'requests to the shadow at once', '8')
    .option('--shadow-timeout <duration>', "the shadow's answer is given up after this", '2s')
    .option('--max-body <size>', 'answers larger than this are not compared', '16MiB')
    .option('--examples <n>', 'mismatch examples kept per route and window', '5')
    .option('--window <duration>', 'one ledger line per window', '60s')
    .option('--duration <duration>', 'stop after this long (default: until SIGINT/SIGTERM)')
    .option('--reports <dir>', 'reports directory (ledger.ndjson, shadow-read-<id>.json)', 'reports')
    .option('--rules <file>', 'comparison rules', 'compare/rules.json')
    .option('--waivers <file>', 'waivers', 'compare/waivers.json')
    .option('--endpoints <file>', 'endpoint catalog (which routes are compared)', 'compare/endpoints.json')
    .action(async (flags: ShadowReadFlags) => {
      // Every option is checked before anything listens or connects.
      const { host, port } = parseListen(flags.listen)
      const primaryUrl = httpUrl('--primary', flags.primary)
      const shadowUrl = httpUrl('--shadow', flags.shadow)
      const sample = share('--sample', flags.sample)
      const queue = wholeNumber('--queue', flags.queue, 0)
      const concurrency = wholeNumber('--concurrency', flags.concurrency, 1)
      const shadowTimeoutMs = parseDuration(flags.shadowTimeout)
      const windowMs = parseDuration(flags.window)
      if (windowMs < 1000) bad(`--window ${flags.window}: use at least 1s`)
      const durationMs = flags.duration === undefined ? undefined : parseDuration(flags.duration)
      const maxBodyBytes = bytes('--max-body', flags.maxBody)
      const examplesPerRoute = wholeNumber('--examples', flags.examples, 0)
      const rules = await loadRules(flags.rules, flags.waivers)
      const manifest = await loadManifest(flags.endpoints)

      const log = ctx.logger.child({ component: 'shadow-read' })
      const proxy = buildShadowReadProxy({
        primaryUrl,
        shadowUrl,
        rules,
        manifest,
        logger: ctx.logger,
        sample,
        queue,
        concurrency,
        shadowTimeoutMs,
        maxBodyBytes,
        examplesPerRoute,
      })
      let url: string
      try {
        url = await proxy.listen(port, host)
      } catch (err) {
        await proxy.close()
        throw listenFailure(err, { port, host }, { port: '--listen', host: '--listen' })
      }
      log.info(
        {
          url,
          primary: primaryUrl,
          shadow: shadowUrl,
          sample,
          queue,
          concurrency,
          shadowTimeoutMs,
          windowMs,
        },
        'shadow-read listening',
      )
      ctx.out(`shadow-read listening on ${url}: ${primaryUrl} answers, ${shadowUrl} is compared`)

      const record = async (w: ShadowReadWindow): Promise<void> => {
        const figures = summary(w)
        try {
          await recordShadowRead(flags.reports, w)
          log.info(figures, 'shadow-read window')
        } catch (err) {
          // A full or read-only disk loses the window's record, never a user's answer.
          log.error({ err: coerceError(err), ...figures }, 'shadow-read window not recorded')
        }
      }
      let recording = Promise.resolve()
      const timer = setInterval(() => {
        recording = recording.then(() => record(proxy.takeWindow()))
      }, windowMs)
      timer.unref()

      await untilStopped(durationMs)
      clearInterval(timer)
      log.info({}, 'shadow-read stopping: no new connections, flushing the window')
      const last = await proxy.close()
      await recording
      await record(last)
      const s = summary(last)
      ctx.out(
        `shadow-read stopped: last window ${s.requests} requests, ${s.compared} compared, ${s.clean} clean, ${s.mismatched} mismatched (${flags.reports})`,
      )
    })
}
