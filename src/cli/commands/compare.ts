import { parseDuration } from '../../util/duration.ts'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Command, Option } from 'commander'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { recordSweep } from '../../compare/ledger.ts'
import { ReadHistory } from '../../compare/history.ts'
import { loadManifest } from '../../compare/manifest.ts'
import { type BackendAuth, BackendClient, DEFAULT_LIMITS, type LoadLimits } from '../../compare/poller.ts'
import { writeReports } from '../../compare/report.ts'
import { loadRules } from '../../compare/rules.ts'
import { runSweep, type SweepResult } from '../../compare/sweep.ts'
import { watch } from '../../compare/watch.ts'
import { openLiveFeeds } from '../../compare/ws-live.ts'
import { type CliContext, EXIT, verdict } from '../program.ts'
import { gateStatus } from './cutover.ts'

/** Parses `trust`, `cookie:name=value` or `login:user:password`. */
export function parseAuth(spec: string | undefined): BackendAuth {
  if (spec === undefined || spec === '' || spec === 'trust') return { kind: 'trust' }
  if (spec.startsWith('cookie:')) return { kind: 'cookie', cookie: spec.slice('cookie:'.length) }
  if (spec.startsWith('login:')) {
    const rest = spec.slice('login:'.length)
    const i = rest.indexOf(':')
    if (i > 0) return { kind: 'login', username: rest.slice(0, i), password: rest.slice(i + 1) }
  }
  throw new OverlordError(
    ERR.CMP_RULES,
    `bad auth spec ${spec.split(':')[0]}: use trust, cookie:name=value or login:user:password`,
  )
}

interface CommonOpts {
  primary?: string
  shadow?: string
  primaryAuth?: string
  shadowAuth?: string
  rules: string
  waivers: string
  manifest: string
  reports: string
  primaryDb?: string
  shadowDb?: string
  /** false with --no-db */
  db?: boolean
  teeMetrics?: string
  concurrency: string
  bucketSeconds?: string
  wsLive?: boolean
  wsWindow?: string
  primaryMaxRps?: string
  primaryMaxInFlight?: string
  shadowMaxRps?: string
  shadowMaxInFlight?: string
}

function addCommon(cmd: Command, ctx: CliContext): Command {
  const env = ctx.env
  return cmd
    .addOption(new Option('--primary <url>', 'primary (Python) base URL').default(env.PRIMARY_URL))
    .addOption(new Option('--shadow <url>', 'shadow (TypeScript) base URL').default(env.SHADOW_URL))
    .addOption(
      new Option('--primary-auth <spec>', 'trust | cookie:name=value | login:user:pass').default(
        env.PRIMARY_AUTH,
      ),
    )
    .addOption(
      new Option('--shadow-auth <spec>', 'trust | cookie:name=value | login:user:pass').default(
        env.SHADOW_AUTH,
      ),
    )
    .option('--rules <file>', 'comparison rules', 'compare/rules.json')
    .option('--waivers <file>', 'waivers', 'compare/waivers.json')
    .option('--manifest <file>', 'endpoint manifest', 'compare/endpoints.json')
    .option('--reports <dir>', 'reports directory', 'reports')
    .addOption(new Option('--primary-db <url>', 'read-only URL of dereth').default(env.PRIMARY_DB_URL))
    .addOption(new Option('--shadow-db <url>', 'read-only URL of dereth_ts').default(env.SHADOW_DB_URL))
    .option('--no-db', 'no database parity, even with --primary-db/--shadow-db or their environment')
    .addOption(
      new Option('--tee-metrics <url>', "the tee's metrics URL (input accounting)").default(
        env.TEE_METRICS_URL,
      ),
    )
    .option('--bucket-seconds <n>', 'database parity bucket width')
    .option(
      '--concurrency <n>',
      'instances read in parallel (more than the primary allows in flight only queues)',
      '4',
    )
    .option('--no-ws-live', 'do not compare the browser feed /ws/live')
    .option('--ws-window <duration>', 'shortest /ws/live window a sweep compares', '5s')
    .addOption(
      new Option(
        '--primary-max-rps <n>',
        `requests/s to the primary (default ${DEFAULT_LIMITS.primary.maxRps}; 0 or none: no limit)`,
      ).default(env.PRIMARY_MAX_RPS),
    )
    .addOption(
      new Option(
        '--primary-max-in-flight <n>',
        `requests awaiting the primary at once (default ${DEFAULT_LIMITS.primary.maxInFlight}; 0 or none: no limit)`,
      ).default(env.PRIMARY_MAX_IN_FLIGHT),
    )
    .addOption(
      new Option(
        '--shadow-max-rps <n>',
        `requests/s to the shadow (default ${DEFAULT_LIMITS.shadow.maxRps}; 0 or none: no limit)`,
      ).default(env.SHADOW_MAX_RPS),
    )
    .addOption(
      new Option(
        '--shadow-max-in-flight <n>',
        `requests awaiting the shadow at once (default ${DEFAULT_LIMITS.shadow.maxInFlight}; 0 or none: no limit)`,
      ).default(env.SHADOW_MAX_IN_FLIGHT),
    )
}

async function prepare(opts: CommonOpts, ctx: CliContext) {
  if (opts.primary === undefined || opts.shadow === undefined) {
    throw new OverlordError(
      ERR.CMP_RULES,
      'both --primary and --shadow (or PRIMARY_URL/SHADOW_URL) are required',
    )
  }
  // Load limits (issue 9 §5): unset keeps the side's DEFAULT_LIMITS, 0 or `none` lifts one.
  const limit = (flag: string, spec: string | undefined, whole: boolean): number | undefined => {
    if (spec === undefined || spec === '') return undefined
    if (spec === '0' || spec === 'none') return Number.POSITIVE_INFINITY
    const n = Number(spec)
    if (!(n > 0) || (whole && !Number.isInteger(n))) {
      throw new OverlordError(
        ERR.CMP_RULES,
        `${flag} ${spec}: use a ${whole ? 'whole ' : ''}number above 0, or 0 or none for no limit`,
      )
    }
    return n
  }
  const limits = (side: 'primary' | 'shadow', rps?: string, inFlight?: string): Partial<LoadLimits> => {
    const maxRps = limit(`--${side}-max-rps`, rps, false)
    const maxInFlight = limit(`--${side}-max-in-flight`, inFlight, true)
    return {
      ...(maxRps === undefined ? {} : { maxRps }),
      ...(maxInFlight === undefined ? {} : { maxInFlight }),
    }
  }
  const primaryLimits = limits('primary', opts.primaryMaxRps, opts.primaryMaxInFlight)
  const shadowLimits = limits('shadow', opts.shadowMaxRps, opts.shadowMaxInFlight)
  const rules = await loadRules(opts.rules, opts.waivers)
  const manifest = await loadManifest(opts.manifest)
  const logger = ctx.logger.child({ component: 'compare' })
  const primary = new BackendClient({
    side: 'primary',
    url: opts.primary,
    auth: parseAuth(opts.primaryAuth),
    logger,
    limits: primaryLimits,
  })
  const shadow = new BackendClient({
    side: 'shadow',
    url: opts.shadow,
    auth: parseAuth(opts.shadowAuth),
    logger,
    limits: shadowLimits,
  })
  const database =
    opts.db !== false && opts.primaryDb !== undefined && opts.shadowDb !== undefined
      ? {
          primaryUrl: opts.primaryDb,
          shadowUrl: opts.shadowDb,
          ...(opts.bucketSeconds === undefined ? {} : { bucketSeconds: Number(opts.bucketSeconds) }),
        }
      : undefined
  // One history for every sweep of this process: watch pairs frames with its earlier polls.
  const history = new ReadHistory({ perUrl: rules.lag.history, maxAgeMs: rules.lag.maxMs })
  // The browser feed, held open across watch sweeps; each sweep takes the window since the last
  // (at least --ws-window long, so a one-shot sweep still sees traffic).
  const minWindowMs = parseDuration(opts.wsWindow ?? '5s')
  const feeds =
    opts.wsLive === false
      ? undefined
      : await openLiveFeeds({
          primary: { url: opts.primary, headers: () => primary.authHeaders() },
          shadow: { url: opts.shadow, headers: () => shadow.authHeaders() },
          logger,
        })
  let windowFrom = Date.now()
  const liveFeed =
    feeds === undefined
      ? undefined
      : async () => {
          const wait = windowFrom + minWindowMs - Date.now()
          if (wait > 0) await sleep(wait)
          windowFrom = Date.now()
          return feeds.window()
        }
  const sweep = () =>
    runSweep({
      primary,
      shadow,
      rules,
      manifest,
      logger,
      concurrency: Number(opts.concurrency),
      teeMetricsUrl: opts.teeMetrics,
      database,
      history,
      ...(liveFeed === undefined ? {} : { liveFeed }),
    })
  return {
    sweep,
    close: async () => {
      await feeds?.close()
      await Promise.all([primary.close(), shadow.close()])
    },
  }
}

/** The one-screen summary printed after a sweep. */
export function summarize(sweep: SweepResult): string[] {
  const lines = [
    `sweep ${sweep.id}: ${sweep.verdict.toUpperCase()} — ${sweep.characters} characters, ${sweep.requests} requests, ${sweep.durationMs} ms`,
    `lag: ${sweep.lag.behind} entities behind (p50 ${sweep.lag.p50Ms ?? '—'} ms, max ${sweep.lag.maxMs ?? '—'} ms), ${sweep.lag.ahead} ahead, ${sweep.lag.paired} compared at the same frame; read gap p50 ${sweep.lag.readGapMs.p50 ?? '—'} ms`,
  ]
  for (const e of sweep.endpoints) {
    const classes = Object.entries(e.byClass)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ')
    lines.push(
      `  ${e.clean ? 'ok  ' : 'FAIL'} ${e.name.padEnd(22)} ${String(e.instances).padStart(5)} inst  mismatch ${e.mismatches}${classes ? ` (${classes})` : ''}  noise ${e.noise}  explained ${e.explained}  errors ${e.errors}`,
    )
  }
  if (sweep.load !== undefined) {
    const { primary: p } = sweep.load
    lines.push(
      `  load on the primary: ${p.requests} requests at ${p.achievedRps ?? '—'}/s (limits ${p.maxRps ?? 'none'}/s, ${p.maxInFlight ?? 'none'} in flight)`,
    )
  }
  for (const w of sweep.waivers.filter((x) => x.suppressed > 0 || x.expired)) {
    lines.push(`  waiver ${w.id}: suppressed ${w.suppressed}${w.expired ? ' (EXPIRED)' : ''}`)
  }
  if (sweep.accounting?.lostInTransit)
    lines.push(`  input: ${sweep.accounting.lostInTransit} frames mirrored but never received`)
  if (sweep.database !== undefined) {
    lines.push(
      `  database: worst ${(sweep.database.worstRelDiff * 100).toFixed(3)} % over ${sweep.database.checks.length} checks`,
    )
  }
  for (const err of sweep.errors.slice(0, 5)) lines.push(`  error ${err.side} ${err.url}: ${err.message}`)
  return lines
}

function exitFor(result: SweepResult['verdict']): void {
  if (result === 'mismatch') throw verdict('parity: MISMATCH', EXIT.MISMATCH)
  if (result === 'error') throw verdict('parity: ERROR (a backend could not be read)', EXIT.ERROR)
}

/** `sweep`, `watch`, `report` (issue 4 §7); the gate's commands are in cutover.ts. */
export function registerCompareCommands(program: Command, ctx: CliContext): void {
  addCommon(program.command('sweep').description('compare primary and shadow once'), ctx)
    .option('--json', 'print the whole sweep result as JSON')
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const { sweep, close } = await prepare(opts, ctx)
      try {
        ctx.out(`sweeping ${opts.primary} vs ${opts.shadow} …`)
        const result = await sweep()
        const file = await recordSweep(opts.reports, result)
        await writeReports(opts.reports)
        if (opts.json) ctx.out(JSON.stringify(result))
        for (const line of summarize(result)) ctx.out(line)
        ctx.out(`report: ${file}, ${join(opts.reports, 'report.html')}`)
        exitFor(result.verdict)
      } finally {
        await close()
      }
    })

  addCommon(program.command('watch').description('sweep repeatedly until cutover is declared'), ctx)
    .option('--interval <duration>', 'time between sweep starts', '10s')
    .option('--jitter <duration>', 'random ± offset per interval', '2s')
    .option('--duration <duration>', 'stop after this long (default: until cutover)')
    .action(async (opts: CommonOpts & { interval: string; jitter: string; duration?: string }) => {
      // A bad duration is refused before either backend is touched.
      const intervalMs = parseDuration(opts.interval)
      const jitterMs = parseDuration(opts.jitter)
      const durationMs = opts.duration === undefined ? undefined : parseDuration(opts.duration)
      const { sweep, close } = await prepare(opts, ctx)
      const abort = new AbortController()
      const onSignal = () => abort.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        const result = await watch({
          sweep,
          reportsDir: opts.reports,
          intervalMs,
          jitterMs,
          ...(durationMs === undefined ? {} : { durationMs }),
          signal: abort.signal,
          logger: ctx.logger,
          onSweep: (s, n) => {
            const dirty = s.endpoints.filter((e) => !e.clean).map((e) => e.name)
            ctx.out(
              `#${n} ${s.startedAt} ${s.verdict}${dirty.length ? ` (${dirty.join(', ')})` : ''} ${s.durationMs} ms`,
            )
          },
        })
        ctx.out(`watch ended (${result.stop}) after ${result.sweeps} sweeps`)
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        await close()
      }
    })

  program
    .command('report')
    .description('rebuild report.md and report.html from the ledger')
    .option('--reports <dir>', 'reports directory', 'reports')
    .option('--criteria <file>', 'cutover criteria', 'compare/cutover.json')
    .option('--rules <file>', 'comparison rules', 'compare/rules.json')
    .option('--waivers <file>', 'waivers', 'compare/waivers.json')
    .action(async (opts: { reports: string; criteria: string; rules: string; waivers: string }) => {
      const { status } = await gateStatus(opts)
      const out = await writeReports(opts.reports, { gate: status })
      ctx.out(`report rebuilt from ${out.sweeps} sweeps: ${out.markdown}, ${out.html}`)
    })
}
