/**
 * What a parity sweep costs the primary (issue 9 §5): plugin send → browser receive latency through
 * a Python stand-in of the live tracker (bench/primary_standin.py: one asyncio process on one core),
 * at a steady plugin rate, (a) with no sweep, (b) while `runSweep` reads 1 000 characters through
 * BackendClient at its default limits, (c) while it reads them with no limits (the engine before
 * issue 9 §5). The shadow is a second instance of the stand-in. Usage and figures: bench/README.md.
 *
 *   node bench/primary-load.ts [--characters 1000] [--rates 70,500] [--plugins 70] [--browsers 5]
 *                              [--window 30] [--rounds 3] [--concurrency 16] [--no-pin]
 *
 * Each rate runs `--rounds` rounds of the three modes, `--window` seconds each, in a rotating order,
 * so whatever else loads the machine falls on every mode alike. Each sweeping mode has one sweeper
 * process that sweeps back to back and is frozen (SIGSTOP) outside its windows: over its windows it
 * reads what continuous sweeping reads, the few costly routes of a sweep's start (/live, /trails,
 * /history) as often as a whole sweep has them and no more. Then, at the first rate, one whole sweep
 * at the defaults is timed on its own.
 *
 * With two or more cores the primary gets core 0 (taskset) and everything else (the shadow, this
 * process, the sweeper) shares the rest, so the figures are the primary's own and not the harness
 * competing for its core. When root, the primary and this process (the plugins and browsers that
 * time the frames, ~10 % of a core each) run at nice -20 and the shadow and the sweeper at -10:
 * other work on the machine then shows neither as latency nor as a sweeper too starved to load the
 * primary, and the sweeper's own parsing and diffing do not delay the browsers.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import os from 'node:os'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import pino from 'pino'
import WebSocket from 'ws'
import { loadManifest } from '../src/compare/manifest.ts'
import { BackendClient, type BackendLoad, type LoadLimits } from '../src/compare/poller.ts'
import { loadRules } from '../src/compare/rules.ts'
import { runSweep } from '../src/compare/sweep.ts'
import { quantile } from '../src/util/quantile.ts'

const { values: a } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    characters: { type: 'string', default: '1000' },
    rates: { type: 'string', default: '70,500' },
    plugins: { type: 'string', default: '70' },
    browsers: { type: 'string', default: '5' },
    window: { type: 'string', default: '30' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    'no-pin': { type: 'boolean', default: false },
    // sweeper role
    primary: { type: 'string' },
    shadow: { type: 'string' },
    limits: { type: 'string', default: 'default' },
    once: { type: 'boolean', default: false },
  },
})
const SECRET = 'bench-secret'
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3'
const now = () => performance.timeOrigin + performance.now()
const logger = pino({ level: 'silent' })
const nameOf = (i: number) => `Char ${String(i).padStart(4, '0')}`

/**
 * What the sweeper child prints: a line per whole sweep, and its clients' load over a window, opened
 * by SIGUSR2 and reported on SIGHUP (SIGUSR1 would start Node's inspector). It starts sweeping at
 * the first SIGUSR2.
 */
type SweeperLine =
  | {
      kind: 'sweep'
      durationMs: number
      requests: number
      characters: number
      verdict: string
      readGapP50Ms: number | null
      load: { primary: BackendLoad; shadow: BackendLoad }
    }
  | { kind: 'window'; load: { primary: BackendLoad; shadow: BackendLoad } }

// ---- the sweeper: its own process (nice -10), so its parsing and diffing never delay the browsers here
if (a.role === 'sweeper') {
  const unlimited: LoadLimits = { maxRps: Number.POSITIVE_INFINITY, maxInFlight: Number.POSITIVE_INFINITY }
  const limits = a.limits === 'none' ? { limits: unlimited } : {}
  const primary = new BackendClient({ side: 'primary', url: a.primary!, logger, ...limits })
  const shadow = new BackendClient({ side: 'shadow', url: a.shadow!, logger, ...limits })
  const print = (line: SweeperLine) => process.stdout.write(`${JSON.stringify(line)}\n`)
  let window = { primary: primary.mark(), shadow: shadow.mark() }
  const started = once(process, 'SIGUSR2')
  process.on('SIGUSR2', () => {
    window = { primary: primary.mark(), shadow: shadow.mark() }
  })
  process.on('SIGHUP', () => {
    print({
      kind: 'window',
      load: { primary: primary.stats(window.primary), shadow: shadow.stats(window.shadow) },
    })
  })
  const rules = await loadRules('compare/rules.json', 'compare/waivers.json')
  const manifest = await loadManifest('compare/endpoints.json')
  process.stdout.write('ready\n')
  const keepAlive = setInterval(() => {}, 60_000) // a pending signal holds no loop open
  await started
  clearInterval(keepAlive)
  do {
    const marks = { primary: primary.mark(), shadow: shadow.mark() }
    const r = await runSweep({ primary, shadow, rules, manifest, logger, concurrency: Number(a.concurrency) })
    print({
      kind: 'sweep',
      durationMs: r.durationMs,
      requests: r.requests,
      characters: r.characters,
      verdict: r.verdict,
      readGapP50Ms: r.lag.readGapMs.p50,
      load: { primary: primary.stats(marks.primary), shadow: shadow.stats(marks.shadow) },
    })
  } while (!a.once)
  print({
    kind: 'window',
    load: { primary: primary.stats(window.primary), shadow: shadow.stats(window.shadow) },
  })
  process.exit(0)
}

// ---- main: stand-ins, plugins, browsers, rows
const CHARACTERS = Number(a.characters)
const RATES = a.rates.split(',').map(Number)
const PLUGINS = Number(a.plugins)
const BROWSERS = Number(a.browsers)
const WINDOW_S = Number(a.window)
const ROUNDS = Number(a.rounds)

if (spawnSync(PYTHON, ['-c', 'import aiohttp'], { stdio: 'ignore' }).status !== 0) {
  console.error(`${PYTHON} cannot import aiohttp: apt-get install -y python3-aiohttp (or set PYTHON)`)
  process.exit(2)
}
const cpus = os.availableParallelism()
const pin = cpus >= 2 && existsSync('/usr/bin/taskset') && !a['no-pin']
const rest = cpus > 2 ? `1-${cpus - 1}` : '1'
if (pin) execFileSync('taskset', ['-a', '-cp', rest, String(process.pid)], { stdio: 'ignore' })
let niced = true
try {
  os.setPriority(-20)
} catch {
  niced = false
  console.error('could not renice to -20 (not root?): running at the default priority')
}
const HARNESS_NICE = niced ? ['nice', '-n', '10'] : []
const loadAtStart = os.loadavg()

const children: ReturnType<typeof spawn>[] = []
async function startStandin(prefix: string[]): Promise<string> {
  const args = [...prefix, PYTHON, 'bench/primary_standin.py', '--secret', SECRET, '--active-window', '3600']
  const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string]
  return `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`
}
process.on('exit', () => {
  for (const c of children) c.kill()
})

const primaryUrl = await startStandin(pin ? ['taskset', '-c', '0'] : [])
const shadowUrl = await startStandin(HARNESS_NICE)
const getJson = async (url: string) => (await (await fetch(url)).json()) as Record<string, any>

async function connect(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url.replace('http', 'ws'), { headers, perMessageDeflate: false })
  await once(ws, 'open')
  return ws
}

function telemetry(i: number, kills: number): Record<string, unknown> {
  return {
    type: 'telemetry',
    character_name: nameOf(i),
    char_tag: 'bench',
    session_id: 's1',
    timestamp: new Date().toISOString(),
    ew: 30 + (i % 50) / 7 + kills / 1000,
    ns: -20 - i / 300,
    z: 0.5,
    kills,
    kills_per_hour: '340.5',
    onlinetime: '00:10:00',
    deaths: '1',
    total_deaths: '3',
    rares_found: 0,
    prismatic_taper_count: '57',
    vt_state: 'Combat',
    mem_mb: 812.4,
    cpu_pct: 3.1,
    mem_handles: 2201,
    latency_ms: 120,
  }
}

// Seed both sides with the same characters, stats and combat sessions, so every per-character
// route answers with a body as the live one would.
for (const url of [primaryUrl, shadowUrl]) {
  const ws = await connect(`${url}/ws/position`, { 'X-Plugin-Secret': SECRET })
  for (let i = 0; i < CHARACTERS; i++) {
    const name = nameOf(i)
    ws.send(JSON.stringify(telemetry(i, i)))
    ws.send(
      JSON.stringify({
        type: 'character_stats',
        character_name: name,
        timestamp: new Date().toISOString(),
        level: 200 + (i % 75),
        total_xp: 1e10 + i,
        unassigned_xp: 0,
        luminance_earned: 1000,
        luminance_total: 2000,
        deaths: 3,
        attributes: { strength: 100, endurance: 100, coordination: 100, quickness: 100, focus: 100 },
        skills: Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`skill_${k}`, 300 + k])),
      }),
    )
    ws.send(
      JSON.stringify({
        type: 'combat_stats',
        character_name: name,
        session_id: 's1',
        stats: {
          damage: { slash: 100 + i, pierce: 50, fire: 20 },
          monsters: { 'Olthoi Soldier': { kills: i % 40, damage: 1000 } },
        },
      }),
    )
  }
  for (;;) {
    if (((await getJson(`${url}/metrics.json`)).frames_accepted ?? 0) >= 3 * CHARACTERS) break
    await sleep(100)
  }
  ws.close()
}
for (const url of [primaryUrl, shadowUrl]) {
  while ((await getJson(`${url}/live`)).players.length < CHARACTERS) await sleep(250)
}

const plugins = await Promise.all(
  Array.from({ length: PLUGINS }, () => connect(`${primaryUrl}/ws/position`, { 'X-Plugin-Secret': SECRET })),
)
let samples: number[] = []
let received = 0
const browsers = await Promise.all(Array.from({ length: BROWSERS }, () => connect(`${primaryUrl}/ws/live`)))
for (const b of browsers) {
  b.on('message', (data) => {
    const at = now()
    received += 1
    const m = JSON.parse(String(data)) as { sent_ms?: number }
    if (typeof m.sent_ms === 'number') samples.push(at - m.sent_ms)
  })
}

/** Telemetry at `rate` frames/s over the plugin sockets, round robin, each stamped at its send. */
function startSending(rate: number): { stop(): void; sent(): number } {
  const kills = Array.from({ length: PLUGINS }, (_, i) => i)
  const t0 = performance.now()
  let sent = 0
  const tick = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate) - sent
    for (let n = 0; n < due; n++) {
      const i = (sent + n) % PLUGINS
      kills[i]! += 1
      plugins[i]!.send(JSON.stringify({ ...telemetry(i, kills[i]!), sent_ms: now() }))
    }
    sent += due
  }, 5)
  return { stop: () => clearInterval(tick), sent: () => sent }
}

/** A sweeper child at its `ready` line: `sweep()` runs it for one window (see {@link SweeperLine}). */
async function startSweeper(limits: 'default' | 'none', onlyOnce = false) {
  const args = ['--role', 'sweeper', '--primary', primaryUrl, '--shadow', shadowUrl, '--limits', limits]
  args.push('--concurrency', a.concurrency)
  const command = [...HARNESS_NICE, process.execPath, 'bench/primary-load.ts', ...args]
  if (onlyOnce) command.push('--once')
  // `nice` execs node, so the pid is the sweeper's own.
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const next = async () => {
    const { value, done } = await lines.next()
    if (done) throw new Error('the sweeper ended')
    return value as string
  }
  if ((await next()) !== 'ready') throw new Error('the sweeper did not start')
  return {
    /** Thaws the sweeper for `seconds` (or until its one sweep ends), then freezes it again. */
    async sweep(seconds?: number): Promise<SweeperLine[]> {
      child.kill('SIGCONT')
      child.kill('SIGUSR2')
      const out: SweeperLine[] = []
      const report =
        seconds === undefined ? undefined : setTimeout(() => child.kill('SIGHUP'), seconds * 1000)
      for (;;) {
        const line = JSON.parse(await next()) as SweeperLine
        out.push(line)
        if (line.kind === 'window') break
      }
      clearTimeout(report)
      if (seconds !== undefined) child.kill('SIGSTOP')
      return out
    },
    stop() {
      child.kill('SIGKILL')
    },
  }
}

interface Row {
  rate: number
  mode: string
  round: number
  windowS: number
  frames: number
  latency: Latency
  delivered: number
  expected: number
  loopLag: { p99: number; max: number }
  /** The part of the loop lag the primary spent on its own CPU (the rest went to other processes). */
  ownLoopLag: { p99: number; max: number }
  primaryCpu: number
  primaryReadsPerS: number
  /** The machine's 1-minute load average at the row's end: other work on the box shows here. */
  load1: number
  sweeps: SweeperLine[]
}

interface Latency {
  n: number
  p50: number | null
  p99: number | null
  p999: number | null
  max: number | null
}

function latencyOf(values: number[]): Latency {
  const sorted = [...values].sort((x, y) => x - y)
  const q = (p: number) => quantile(sorted, p) ?? null
  return { n: sorted.length, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: sorted.at(-1) ?? null }
}

async function measure(
  rate: number,
  mode: string,
  round: number,
  sent: () => number,
  run: () => Promise<SweeperLine[]>,
): Promise<{ row: Row; samples: number[] }> {
  await fetch(`${primaryUrl}/bench/reset`, { method: 'POST' })
  samples = []
  received = 0
  const sentBefore = sent()
  const t0 = performance.now()
  const lines = await run()
  const windowS = (performance.now() - t0) / 1000
  const frames = sent() - sentBefore
  await sleep(200) // the last frames' way to the browsers
  const m = await getJson(`${primaryUrl}/metrics.json`)
  const row: Row = {
    rate,
    mode,
    round,
    windowS,
    frames,
    latency: latencyOf(samples),
    delivered: received,
    expected: frames * BROWSERS,
    loopLag: { p99: m.loop_lag_ms.p99, max: m.loop_lag_ms.max },
    ownLoopLag: { p99: m.own_loop_lag_ms.p99, max: m.own_loop_lag_ms.max },
    primaryCpu: m.cpu_s / m.wall_s,
    primaryReadsPerS: m.reads / m.wall_s,
    load1: os.loadavg()[0]!,
    sweeps: lines,
  }
  console.log(JSON.stringify(row))
  return { row, samples }
}

const WHOLE = 'defaults, one whole sweep'
const MODE_NAMES = ['none', 'defaults', 'no limits']
const measured: { row: Row; samples: number[] }[] = []
const costly: { rate: number; path: string; ms: number; bytes: number }[] = []
for (const [r, rate] of RATES.entries()) {
  const sender = startSending(rate)
  const sweepers = { defaults: await startSweeper('default'), 'no limits': await startSweeper('none') }
  await sleep(3000)
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < MODE_NAMES.length; k++) {
      const mode = MODE_NAMES[(k + round) % MODE_NAMES.length]!
      const run =
        mode === 'none'
          ? async () => {
              await sleep(WINDOW_S * 1000)
              return []
            }
          : () => sweepers[mode as keyof typeof sweepers].sweep(WINDOW_S)
      measured.push(await measure(rate, mode, round, sender.sent, run))
    }
  }
  for (const s of Object.values(sweepers)) s.stop()
  // The few costly reads of a sweep's start, one at a time: no limit on the number of reads helps there.
  const hourAgo = encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())
  for (const path of ['/live', '/trails?seconds=600', `/history?from=${hourAgo}`]) {
    const t0 = performance.now()
    const body = await (await fetch(`${primaryUrl}${path}`)).text()
    costly.push({ rate, path: path.split('?')[0]!, ms: performance.now() - t0, bytes: body.length })
  }
  if (r === 0) {
    const whole = await startSweeper('default', true)
    measured.push(await measure(rate, WHOLE, 0, sender.sent, () => whole.sweep()))
  }
  sender.stop()
  await sleep(1000)
}

const f = (v: number | null | undefined) => (v == null ? '—' : v < 10 ? v.toFixed(1) : v.toFixed(0))
const range = (vs: number[]) => {
  const lo = Math.min(...vs)
  const hi = Math.max(...vs)
  return f(lo) === f(hi) ? f(lo) : `${f(lo)}-${f(hi)}`
}
const first = os.cpus()[0]
console.log(
  `\n${os.cpus().length} × ${first?.model ?? '?'}, ${pin ? 'primary pinned to core 0, the rest on the others' : 'no pinning'}${niced ? ', primary and browsers at nice -20, shadow and sweeper at -10' : ''}; ${CHARACTERS} characters, ${PLUGINS} plugins, ${BROWSERS} browsers, ${ROUNDS} rounds of ${WINDOW_S} s, sweep concurrency ${a.concurrency}; load average ${loadAtStart.map((x) => x.toFixed(1)).join(' ')} at start, ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} at end\n`,
)
console.log(
  '| plugin rate | sweep | measured | send→browser p50 / p99 / p99.9 / max (ms) | p99 per round (ms) | primary loop lag p99 / max (ms) | of which its own CPU p99 / max (ms) | primary CPU | reads/s at primary | primary req/s achieved (limit) | read gap p50 | sweep duration | load avg |',
)
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const rate of RATES) {
  for (const mode of [...MODE_NAMES, WHOLE]) {
    const group = measured.filter((m) => m.row.rate === rate && m.row.mode === mode)
    if (group.length === 0) continue
    const rows = group.map((g) => g.row)
    const pooled = latencyOf(group.flatMap((g) => g.samples))
    const finals = rows.flatMap((x) => x.sweeps).filter((l) => l.kind === 'window')
    const completed = rows.flatMap((x) => x.sweeps).filter((l) => l.kind === 'sweep')
    // Only an unfrozen sweep's duration means anything.
    const whole = mode === WHOLE ? completed : []
    const limit = finals[0]?.load.primary
    const achieved = finals.length
      ? `${range(finals.map((l) => l.load.primary.achievedRps ?? 0))} (${limit?.maxRps ?? '∞'}/s, ${limit?.maxInFlight ?? '∞'} in flight)`
      : '—'
    const seconds = rows.reduce((t, x) => t + x.windowS, 0)
    console.log(
      [
        `${rate} f/s`,
        mode,
        `${seconds.toFixed(0)} s`,
        `${f(pooled.p50)} / ${f(pooled.p99)} / ${f(pooled.p999)} / ${f(pooled.max)}`,
        rows.map((x) => f(x.latency.p99)).join(', '),
        `${range(rows.map((x) => x.loopLag.p99))} / ${f(Math.max(...rows.map((x) => x.loopLag.max)))}`,
        `${range(rows.map((x) => x.ownLoopLag.p99))} / ${f(Math.max(...rows.map((x) => x.ownLoopLag.max)))}`,
        `${range(rows.map((x) => x.primaryCpu * 100))} %`,
        range(rows.map((x) => x.primaryReadsPerS)),
        achieved,
        completed.length
          ? `${range(completed.map((l) => (l.kind === 'sweep' ? (l.readGapP50Ms ?? 0) : 0)))} ms`
          : '—',
        whole.length
          ? whole
              .map((l) =>
                l.kind === 'sweep' ? `${(l.durationMs / 1000).toFixed(0)} s, ${l.requests} requests` : '',
              )
              .join('; ')
          : '—',
        range(rows.map((x) => x.load1)),
      ]
        .join(' | ')
        .replace(/^/, '| ')
        .concat(' |'),
    )
  }
}
console.log('\none read of each costly route at the end of each rate (wall time on the primary, size):')
for (const c of costly)
  console.log(`  ${c.rate} f/s ${c.path}: ${c.ms.toFixed(0)} ms, ${(c.bytes / 1e6).toFixed(2)} MB`)
process.exit(0)
