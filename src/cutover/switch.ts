import { spawn } from 'node:child_process'
import { appendFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { type CutoverLedgerEntry, LEDGER_FILE } from '../compare/ledger.ts'
import { ERR, OverlordError } from '../protocol/errors.ts'
import { type LiveSide, readIfExists, renderUpstream, upstreamServer, writeAtomically } from './upstream.ts'

/**
 * `cutover flip` and `cutover rollback` (issue 10 §2): which tracker serves the live paths, and
 * which one writes `dereth`, changed by one command each, recorded in the ledger.
 *
 * flip:     [start the TypeScript tracker in the primary role] → check it is that → write the
 *           upstream include → `nginx -t` → `nginx -s reload` → ledger.
 * rollback: [restart the Python tracker] → check it answers → write the include → `nginx -t` →
 *           reload → ledger → [stop the TypeScript tracker].
 * A failed test or reload puts the include back as it was (and reloads it), so nginx is never left
 * pointing somewhere its configuration does not say.
 */

/** A step's shell command (operators write `sudo systemctl …`, `docker compose …`). */
export interface CommandResult {
  command: string
  code: number | null
  output: string
}

export async function runCommand(command: string, timeoutMs = 60_000): Promise<CommandResult> {
  const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const take = (d: Buffer) => {
    if (output.length < 16_384) output += d.toString()
  }
  child.stdout.on('data', take)
  child.stderr.on('data', take)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      output += String(err)
      resolve(null)
    })
    child.on('close', (c) => resolve(c))
  })
  clearTimeout(timer)
  return { command, code, output: output.trim() }
}

/** What `/metrics.json` says of a TypeScript tracker (internal trust: run on its host). */
export interface TrackerFacts {
  role: string
  database: string
  readOnly: boolean
  pluginConnections: number
  /** Frames it has taken since it started: above 0, its in-memory kill baselines are not fresh. */
  framesReceived: number
}

export async function trackerFacts(base: string): Promise<TrackerFacts> {
  const res = await request(new URL('/metrics.json', base), { headersTimeout: 5_000, bodyTimeout: 5_000 })
  if (res.statusCode !== 200) {
    await res.body.dump()
    throw new Error(`${base}/metrics.json answered ${res.statusCode}`)
  }
  const m = (await res.body.json()) as Record<string, unknown>
  return {
    role: String(m.role ?? 'unknown'),
    database: String(m.database ?? 'unknown'),
    readOnly: m.read_only === true,
    pluginConnections: Number(m.plugin_connections ?? 0),
    framesReceived: Number(m.frames_received ?? 0),
  }
}

/** Whether `base/health` answers 200. */
export async function healthy(base: string): Promise<boolean> {
  try {
    const res = await request(new URL('/health', base), { headersTimeout: 3_000, bodyTimeout: 3_000 })
    await res.body.dump()
    return res.statusCode === 200
  } catch {
    return false
  }
}

/** Polls `check` every 250 ms until it yields a value or `ms` pass; the last error explains a timeout. */
async function waitFor<T>(ms: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
  const until = Date.now() + ms
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch {
      // not up yet
    }
    if (Date.now() >= until) return undefined
    await sleep(250)
  }
}

/** The `host:port` an nginx upstream `server` line takes from a tracker's URL. */
export const hostPort = (url: string): string => {
  const u = new URL(url)
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`
}

export interface SwitchOptions {
  /** The include file the operator names; written whole each time. */
  include: string
  upstreamName: string
  /** The Python tracker (8765 in the port plan). */
  primary: string
  /** The TypeScript tracker in the primary role (8767 in the port plan). */
  tracker: string
  /** The database the primary-role tracker must be writing. */
  database: string
  nginxTest: string
  nginxReload: string
  reports: string
  by: string
  reason: string
  /** The gate said NO-GO and `--force` went past it (recorded). */
  forced: boolean
  /** `--force`: also past the checks that protect the data (a tracker that is not fresh, a dead Python). */
  force: boolean
  gate: { go: boolean; reasons: string[] }
  /** How long to wait for a tracker started or restarted here. */
  waitMs: number
  /** Human progress lines. */
  out: (line: string) => void
}

export interface FlipOptions extends SwitchOptions {
  startTracker?: string
}

export interface RollbackOptions extends SwitchOptions {
  restartPrimary?: string
  /** The operator says the Python tracker has restarted since the flip: no restart needed. */
  primaryRestarted?: boolean
  stopTracker?: string
}

/** One `kind: "cutover"` ledger line: who, when, why, and what was done. */
export interface CutoverEvent extends CutoverLedgerEntry {
  gate: { go: boolean; reasons: string[] }
  include: string
  tracker: TrackerFacts | null
  commands: { command: string; code: number | null }[]
}

const refuse = (message: string) => new OverlordError(ERR.CUTOVER, message)

async function step(o: SwitchOptions, done: CommandResult[], command: string, what: string): Promise<void> {
  o.out(`${what}: ${command}`)
  const r = await runCommand(command)
  done.push(r)
  if (r.code !== 0) {
    const first = r.output.split('\n').find((l) => l.trim() !== '') ?? `exit ${r.code}`
    throw refuse(`${what} failed (${command}): ${first}`)
  }
}

/**
 * Writes the include, tests and reloads nginx; on any failure puts the old include back (and
 * reloads that) before refusing. Returns the `server` the include named before.
 */
async function switchUpstream(
  o: SwitchOptions,
  done: CommandResult[],
  side: LiveSide,
  action: 'flip' | 'rollback',
  server: string,
  at: string,
): Promise<string | null> {
  const before = await readIfExists(o.include)
  const from = before === undefined ? null : (upstreamServer(before, o.upstreamName) ?? null)
  await writeAtomically(
    o.include,
    renderUpstream({ name: o.upstreamName, server, side, action, at, by: o.by, reason: o.reason }),
  )
  o.out(`wrote ${o.include}: upstream ${o.upstreamName} → ${server}`)
  try {
    if (o.nginxTest.trim() !== '') await step(o, done, o.nginxTest, 'nginx test')
    await step(o, done, o.nginxReload, 'nginx reload')
  } catch (err) {
    if (before === undefined) {
      o.out(
        `put back: ${o.include} did not exist before; it keeps the new text, nginx keeps its old configuration`,
      )
    } else {
      await writeAtomically(o.include, before)
      o.out(`put back ${o.include} as it was (upstream ${o.upstreamName} → ${from ?? '?'})`)
      if (o.nginxTest.trim() === '' || (await runCommand(o.nginxTest)).code === 0)
        await runCommand(o.nginxReload)
    }
    throw err
  }
  return from
}

/** Appends the `kind: "cutover"` ledger line of what was done (who, when, why, the commands run). */
async function record(
  o: SwitchOptions,
  what: Pick<CutoverEvent, 'action' | 'at' | 'from' | 'to' | 'tracker'>,
  done: readonly CommandResult[],
): Promise<CutoverEvent> {
  const event: CutoverEvent = {
    kind: 'cutover',
    ...what,
    by: o.by,
    reason: o.reason,
    forced: o.forced,
    gate: o.gate,
    include: o.include,
    commands: done.map(({ command, code }) => ({ command, code })),
  }
  await mkdir(o.reports, { recursive: true })
  await appendFile(join(o.reports, LEDGER_FILE), `${JSON.stringify(event)}\n`)
  return event
}

/** `cutover flip`: the TypeScript tracker becomes the primary. */
export async function flip(o: FlipOptions): Promise<CutoverEvent> {
  const done: CommandResult[] = []
  const at = new Date().toISOString()
  if (o.startTracker !== undefined) await step(o, done, o.startTracker, 'start the TypeScript tracker')
  const facts = await waitFor(o.startTracker === undefined ? 0 : o.waitMs, async () => {
    const f = await trackerFacts(o.tracker)
    return f.role === 'primary' ? f : undefined
  })
  if (facts === undefined) {
    const seen = await trackerFacts(o.tracker).catch((err: unknown) => (err as Error).message)
    throw refuse(
      typeof seen === 'string'
        ? `cutover refused: no TypeScript tracker answers at ${o.tracker} (${seen}); start it with TRACKER_ROLE=primary`
        : `cutover refused: the tracker at ${o.tracker} runs in the ${seen.role} role; start it with TRACKER_ROLE=primary`,
    )
  }
  if (facts.database !== o.database)
    throw refuse(
      `cutover refused: the tracker at ${o.tracker} writes "${facts.database}", not "${o.database}" (--database)`,
    )
  // Kill accounting remembers each session's last count in memory (CONTRACT §6): a tracker that was
  // the writer before and kept running would add everything since then a second time.
  if (facts.framesReceived > 0 && !o.force)
    throw refuse(
      `cutover refused: the tracker at ${o.tracker} has taken ${facts.framesReceived} plugin frames since it started; restart it so its kill counts start fresh (or --force)`,
    )
  o.out(`the TypeScript tracker at ${o.tracker} is in the primary role on "${facts.database}"`)
  const from = await switchUpstream(o, done, 'typescript', 'flip', hostPort(o.tracker), at)
  return record(o, { action: 'flip', at, from, to: hostPort(o.tracker), tracker: facts }, done)
}

/** `cutover rollback`: the Python tracker is the primary again. */
export async function rollback(o: RollbackOptions): Promise<CutoverEvent> {
  const done: CommandResult[] = []
  const at = new Date().toISOString()
  // The Python tracker remembers each session's last kill count in memory (CONTRACT §6): still
  // holding the counts from before the flip, it would add the TypeScript period's kills again.
  if (o.restartPrimary === undefined && o.primaryRestarted !== true)
    throw refuse(
      "rollback refused: give --restart-primary <command> (the Python tracker's in-memory kill counts predate the flip and would count the TypeScript period's kills twice), or --primary-restarted if it has restarted since",
    )
  if (o.restartPrimary !== undefined) await step(o, done, o.restartPrimary, 'restart the Python tracker')
  const up = await waitFor(o.restartPrimary === undefined ? 0 : o.waitMs, async () =>
    (await healthy(o.primary)) ? true : undefined,
  )
  if (up === undefined && !o.force)
    throw refuse(
      `rollback refused: the Python tracker at ${o.primary} does not answer /health (--force to route to it anyway)`,
    )
  const facts = await trackerFacts(o.tracker).catch(() => null)
  const from = await switchUpstream(o, done, 'python', 'rollback', hostPort(o.primary), at)
  // nginx routes to Python now: the rollback has happened and is recorded even if the stop fails.
  let stopFailed: unknown
  if (o.stopTracker !== undefined) {
    try {
      await step(o, done, o.stopTracker, 'stop the TypeScript tracker')
    } catch (err) {
      stopFailed = err
    }
  }
  const event = await record(
    o,
    { action: 'rollback', at, from, to: hostPort(o.primary), tracker: facts },
    done,
  )
  if (stopFailed !== undefined) throw stopFailed
  return event
}
