import { userInfo } from 'node:os'
import type { Command } from 'commander'
import {
  declareCutover,
  evaluateGate,
  type GateStatus,
  gateLines,
  parseCriteria,
} from '../../compare/gate.ts'
import { describeCutover, readLedger } from '../../compare/ledger.ts'
import { loadRules, readJson } from '../../compare/rules.ts'
import { type CutoverEvent, flip, rollback, type SwitchOptions } from '../../cutover/switch.ts'
import { clearDeclaration } from '../../compare/gate.ts'
import { parseDuration } from '../../util/duration.ts'
import { type CliContext, EXIT, verdict } from '../program.ts'
import { PRIMARY_DATABASE, PRIMARY_PORT, PRIMARY_ROLE_PORT } from '../tracker-config.ts'

interface GateOpts {
  reports: string
  criteria: string
  rules: string
  waivers: string
}

/** The gate as the ledger stands now, with the criteria it was judged by. */
export async function gateStatus(opts: GateOpts) {
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

function printGate(ctx: CliContext, status: GateStatus, json = false): void {
  if (json) ctx.out(JSON.stringify(status))
  else for (const line of gateLines(status)) ctx.out(line)
}

const gateOptions = (cmd: Command) =>
  cmd
    .option('--reports <dir>', 'reports directory', 'reports')
    .option('--criteria <file>', 'cutover criteria', 'compare/cutover.json')
    .option('--rules <file>', 'comparison rules', 'compare/rules.json')
    .option('--waivers <file>', 'waivers', 'compare/waivers.json')

interface SwitchOpts extends GateOpts {
  nginxInclude: string
  upstream: string
  primary: string
  tracker: string
  database: string
  nginxTest: string
  nginxReload: string
  by?: string
  reason: string
  wait: string
  force?: boolean
}

/** The options flip and rollback share: where nginx is, which trackers, who and why. */
const switchOptions = (cmd: Command) =>
  gateOptions(cmd)
    .requiredOption('--nginx-include <file>', 'the upstream include file the live site uses (written whole)')
    .requiredOption('--reason <why>', 'why (recorded in the ledger)')
    .option('--by <who>', 'who (recorded; default: the login name)')
    .option('--upstream <name>', 'the upstream name the live locations proxy_pass to', 'dereth_live')
    .option('--primary <url>', 'the Python tracker', `http://127.0.0.1:${PRIMARY_PORT}`)
    .option(
      '--tracker <url>',
      'the TypeScript tracker in the primary role',
      `http://127.0.0.1:${PRIMARY_ROLE_PORT}`,
    )
    .option('--database <name>', 'the database the primary-role tracker must write', PRIMARY_DATABASE)
    .option('--nginx-test <command>', 'checks the configuration first ("" skips)', 'nginx -t')
    .option('--nginx-reload <command>', 'applies it', 'nginx -s reload')
    .option('--wait <duration>', 'how long a tracker started or restarted here may take to answer', '60s')

function whoAmI(): string {
  try {
    return process.env.SUDO_USER || userInfo().username
  } catch {
    return 'unknown'
  }
}

function switchBase(ctx: CliContext, opts: SwitchOpts, status: GateStatus): SwitchOptions {
  return {
    include: opts.nginxInclude,
    upstreamName: opts.upstream,
    primary: opts.primary,
    tracker: opts.tracker,
    database: opts.database,
    nginxTest: opts.nginxTest,
    nginxReload: opts.nginxReload,
    reports: opts.reports,
    by: opts.by ?? whoAmI(),
    reason: opts.reason,
    forced: opts.force === true && !status.go,
    force: opts.force === true,
    gate: { go: status.go, reasons: status.reasons },
    waitMs: parseDuration(opts.wait),
    out: (line) => ctx.out(`  ${line}`),
  }
}

const summary = (e: CutoverEvent) =>
  `${e.action} recorded in the ledger: ${e.at} by ${e.by}${e.forced ? ' (forced)' : ''}: ${e.reason}`

/** `cutover status|declare|flip|rollback` (issue 4 §7, issue 10 §2). */
export function registerCutover(program: Command, ctx: CliContext): void {
  const cutover = program.command('cutover').description('the cutover gate, and the switch it guards')
  gateOptions(
    cutover
      .command('status')
      .description('go/no-go: the deciding reasons first, then each failing criterion and its evidence'),
  )
    .option('--json', 'print the gate status (criteria, reasons, noise by field) as JSON')
    .action(async (opts: GateOpts & { json?: boolean }) => {
      const { status } = await gateStatus(opts)
      printGate(ctx, status, opts.json)
      const last = (await readLedger(opts.reports)).cutovers.at(-1)
      if (last !== undefined && !opts.json) ctx.out(describeCutover(last))
      if (!status.go) throw verdict('cutover: NO-GO', EXIT.MISMATCH)
    })

  gateOptions(cutover.command('declare').description('record the cutover decision and stop running watchers'))
    .requiredOption('--by <who>', 'who declares')
    .option('--force', 'declare even though the gate says no-go (recorded)')
    .action(async (opts: GateOpts & { by: string; force?: boolean }) => {
      const { status } = await gateStatus(opts)
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
      ctx.out('switch with: overlord-ts cutover flip --nginx-include <file> --reason <why>')
    })

  switchOptions(
    cutover
      .command('flip')
      .description('make the TypeScript tracker the primary: check its role, point nginx at it, record it'),
  )
    .option('--start-tracker <command>', 'starts the TypeScript tracker in the primary role first')
    .option('--force', 'flip even though the gate says NO-GO (recorded)')
    .action(async (opts: SwitchOpts & { startTracker?: string }) => {
      const { status } = await gateStatus(opts)
      printGate(ctx, status)
      if (!status.go && !opts.force)
        throw verdict(
          'cutover refused: the gate says NO-GO (use --force to override, recorded)',
          EXIT.MISMATCH,
        )
      const event = await flip({
        ...switchBase(ctx, opts, status),
        ...(opts.startTracker === undefined ? {} : { startTracker: opts.startTracker }),
      })
      // Watchers stop: primary and shadow are no longer the pair they compared.
      await declareCutover(opts.reports, {
        declaredAt: event.at,
        by: event.by,
        forced: event.forced,
        status,
      }).catch(() => {})
      ctx.out(
        `flipped: the live paths go to the TypeScript tracker at ${event.to} (was ${event.from ?? 'unset'})`,
      )
      ctx.out(summary(event))
      ctx.out(
        `plugins move as nginx's old workers close their sockets (worker_shutdown_timeout); rollback: overlord-ts cutover rollback --nginx-include ${opts.nginxInclude} --reason <why>`,
      )
    })

  switchOptions(
    cutover
      .command('rollback')
      .description('make the Python tracker the primary again: point nginx back at it, record it'),
  )
    .option(
      '--restart-primary <command>',
      'restarts the Python tracker first, so it forgets kill counts from before the flip (CONTRACT §6 keeps them in memory)',
    )
    .option('--primary-restarted', 'the Python tracker has restarted since the flip: do not restart it')
    .option('--stop-tracker <command>', 'stops the TypeScript tracker after nginx points away from it')
    .option('--force', 'route to the Python tracker even when it does not answer /health (recorded)')
    .action(
      async (
        opts: SwitchOpts & { restartPrimary?: string; primaryRestarted?: boolean; stopTracker?: string },
      ) => {
        const { status } = await gateStatus(opts)
        const event = await rollback({
          ...switchBase(ctx, opts, status),
          ...(opts.restartPrimary === undefined ? {} : { restartPrimary: opts.restartPrimary }),
          primaryRestarted: opts.primaryRestarted === true,
          ...(opts.stopTracker === undefined ? {} : { stopTracker: opts.stopTracker }),
        })
        const cleared = await clearDeclaration(opts.reports, event.at)
        ctx.out(
          `rolled back: the live paths go to the Python tracker at ${event.to} (was ${event.from ?? 'unset'})`,
        )
        ctx.out(summary(event))
        if (cleared !== undefined)
          ctx.out(`the cutover declaration is set aside (${cleared}): watch may run again`)
      },
    )
}
