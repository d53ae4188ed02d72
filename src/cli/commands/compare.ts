import { parseDuration } from '../../util/duration.ts'
import { join } from 'node:path'
import { type Command, Option } from 'commander'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { declareCutover, evaluateGate, type GateStatus, parseCriteria } from '../../compare/gate.ts'
import { readLedger, recordSweep } from '../../compare/ledger.ts'
import { loadManifest } from '../../compare/manifest.ts'
import { type BackendAuth, BackendClient } from '../../compare/poller.ts'
import { writeReports } from '../../compare/report.ts'
import { loadRules, readJson } from '../../compare/rules.ts'
import { runSweep, type SweepResult } from '../../compare/sweep.ts'
import { watch } from '../../compare/watch.ts'
import { type CliContext, EXIT, verdict } from '../program.ts'

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
  teeMetrics?: string
  concurrency: string
  bucketSeconds?: string
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
    .addOption(
      new Option('--tee-metrics <url>', "the tee's metrics URL (input accounting)").default(
        env.TEE_METRICS_URL,
      ),
    )
    .option('--bucket-seconds <n>', 'database parity bucket width')
    .option('--concurrency <n>', 'instances read in parallel', '16')
}

async function prepare(opts: CommonOpts, ctx: CliContext) {
  if (opts.primary === undefined || opts.shadow === undefined) {
    throw new OverlordError(
      ERR.CMP_RULES,
      'both --primary and --shadow (or PRIMARY_URL/SHADOW_URL) are required',
    )
  }
  const rules = await loadRules(opts.rules, opts.waivers)
  const manifest = await loadManifest(opts.manifest)
  const logger = ctx.logger.child({ component: 'compare' })
  const primary = new BackendClient({
    side: 'primary',
    url: opts.primary,
    auth: parseAuth(opts.primaryAuth),
    logger,
  })
  const shadow = new BackendClient({
    side: 'shadow',
    url: opts.shadow,
    auth: parseAuth(opts.shadowAuth),
    logger,
  })
  const database =
    opts.primaryDb !== undefined && opts.shadowDb !== undefined
      ? {
          primaryUrl: opts.primaryDb,
          shadowUrl: opts.shadowDb,
          ...(opts.bucketSeconds === undefined ? {} : { bucketSeconds: Number(opts.bucketSeconds) }),
        }
      : undefined
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
    })
  return { sweep, close: async () => Promise.all([primary.close(), shadow.close()]) }
}

/** The one-screen summary printed after a sweep. */
export function summarize(sweep: SweepResult): string[] {
  const lines = [
    `sweep ${sweep.id}: ${sweep.verdict.toUpperCase()} — ${sweep.characters} characters, ${sweep.requests} requests, ${sweep.durationMs} ms`,
    `lag p50 ${sweep.lag.p50Ms ?? '—'} ms p95 ${sweep.lag.p95Ms ?? '—'} ms (${sweep.lag.samples} samples), read gap p50 ${sweep.lag.readGapMs.p50 ?? '—'} ms`,
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

async function gateStatus(opts: { reports: string; criteria: string; rules: string; waivers: string }) {
  const { entries } = await readLedger(opts.reports)
  const rules = await loadRules(opts.rules, opts.waivers)
  let raw: unknown
  try {
    raw = await readJson(opts.criteria)
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'ENOENT') throw err
  }
  const criteria = parseCriteria(raw)
  return { status: evaluateGate(entries, rules.waivers, criteria, Date.now()), criteria }
}

function printGate(ctx: CliContext, status: GateStatus): void {
  ctx.out(`cutover: ${status.go ? 'GO' : 'NO-GO'} (${status.evaluatedAt})`)
  for (const c of status.criteria)
    ctx.out(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.description}: ${c.figure} — ${c.evidence}`)
}

/** `sweep`, `watch`, `report`, `cutover status|declare` (issue 4 §7). */
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

  const cutover = program.command('cutover').description('the cutover gate')
  const gateOptions = (cmd: Command) =>
    cmd
      .option('--reports <dir>', 'reports directory', 'reports')
      .option('--criteria <file>', 'cutover criteria', 'compare/cutover.json')
      .option('--rules <file>', 'comparison rules', 'compare/rules.json')
      .option('--waivers <file>', 'waivers', 'compare/waivers.json')
  gateOptions(cutover.command('status').description('go/no-go with each criterion and its evidence')).action(
    async (opts: { reports: string; criteria: string; rules: string; waivers: string }) => {
      const { status } = await gateStatus(opts)
      printGate(ctx, status)
      if (!status.go) throw verdict('cutover: NO-GO', EXIT.MISMATCH)
    },
  )
  gateOptions(
    cutover.command('declare').description('record the cutover, stop watchers, print the nginx flip'),
  )
    .requiredOption('--by <who>', 'who declares')
    .option('--force', 'declare even though the gate says no-go (recorded)')
    .action(
      async (opts: {
        reports: string
        criteria: string
        rules: string
        waivers: string
        by: string
        force?: boolean
      }) => {
        const { status, criteria } = await gateStatus(opts)
        printGate(ctx, status)
        if (!status.go && !opts.force) {
          throw verdict(
            'cutover refused: the gate says NO-GO (use --force to override, recorded)',
            EXIT.MISMATCH,
          )
        }
        const file = await declareCutover(opts.reports, {
          declaredAt: new Date().toISOString(),
          by: opts.by,
          forced: !status.go,
          status,
        })
        ctx.out(`cutover declared by ${opts.by}: ${file} (running watchers stop at their next sweep)`)
        ctx.out('flip nginx to the shadow:')
        for (const line of criteria.nginx.flip) ctx.out(`  ${line}`)
        ctx.out('rollback:')
        for (const line of criteria.nginx.rollback) ctx.out(`  ${line}`)
      },
    )
}
