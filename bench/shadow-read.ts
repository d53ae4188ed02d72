/**
 * What `shadow-read` costs a user's read (issue 10 §1), all in one run:
 *
 *   npx node bench/shadow-read.ts [--characters 20] [--rates 50,200] [--seconds 10] [--rounds 3]
 *                                 [--concurrency 32] [--ceiling-seconds 10]
 *
 * Each part is its own process, as in production: the primary and the shadow (`serve`, each on its
 * own fresh database, the same SECRET_KEY and user), fed the same frames by `--characters` plugins
 * (telemetry every 2 s, character and combat stats, quests; the shadow gets each frame 50 ms later,
 * the tee's hop), and four `shadow-read` proxies in front of the primary: mirroring to the shadow
 * (up), to a closed port (down), to a server that accepts and never answers (stalled), and one with
 * `--sample 0` (the proxy alone), plus one mirroring a fifth of the reads (`--sample 0.2`). From this process, with a session cookie and X-Forwarded-For as
 * nginx sends them, a dashboard-like mix of reads (`/live`, `/stats/X`, `/trails`, …):
 *   1. latency, at each of `--rates` requests/s (open loop), `--seconds` per scenario — direct to the
 *      primary, then through each proxy — in `--rounds` rounds, the order rotating each round, with a
 *      pause between scenarios so no backlog carries over;
 *   2. throughput ceiling: `--concurrency` clients back to back for `--ceiling-seconds`, direct and
 *      through the proxies (shadow up; sample 0), twice in alternating order.
 * Then each proxy is stopped (SIGTERM) and its ledger read: what it compared, dropped and counted.
 */
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile } from 'node:fs/promises'
import net from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { Pool } from 'undici'
import WebSocket from 'ws'
import type { ShadowReadLedgerEntry } from '../src/compare/ledger.ts'
import { createPool } from '../src/db/pool.ts'
import { createUser } from '../src/db/users.ts'
import { Sessions } from '../src/tracker/sessions.ts'
import { freePort, NODE, percentiles, startChild } from './tee-support.ts'

const { values } = parseArgs({
  options: {
    characters: { type: 'string', default: '20' },
    rates: { type: 'string', default: '50,200' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    'ceiling-seconds': { type: 'string', default: '10' },
    server: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
})
const CHARACTERS = Number(values.characters)
const RATES = values.rates.split(',').map(Number)
const SCENARIO_MS = Number(values.seconds) * 1000
const ROUNDS = Number(values.rounds)
const CONCURRENCY = Number(values.concurrency)
const CEILING_MS = Number(values['ceiling-seconds']) * 1000
const SECRET = 'bench-plugin-secret'
const SECRET_KEY = 'bench-secret-key'
const USER = 'bench'

const children: ChildProcess[] = []
const stopAll = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
}
process.on('exit', stopAll)

async function freshDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: values.server })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(values.server)
  url.pathname = `/${name}`
  return url.toString()
}

async function startTracker(name: string): Promise<{ port: number; db: string }> {
  const db = await freshDatabase(name)
  const port = await freePort()
  children.push(
    await startChild(
      NODE,
      ['src/cli/main.ts', 'serve'],
      { PORT: String(port), SHARED_SECRET: SECRET, DATABASE_URL: db, SECRET_KEY },
      port,
    ),
  )
  const pool = createPool({ connectionString: db, max: 1 })
  await createUser(pool, { username: USER, password: 'bench-password' })
  await pool.end()
  return { port, db }
}

async function startProxy(
  primaryPort: number,
  shadowUrl: string,
  extra: string[] = [],
): Promise<{ port: number; reports: string; child: ChildProcess }> {
  const port = await freePort()
  const reports = await mkdtemp(join(tmpdir(), 'bench-shadow-read-'))
  const child = await startChild(
    NODE,
    [
      'src/cli/main.ts',
      'shadow-read',
      '--listen',
      `127.0.0.1:${port}`,
      '--primary',
      `http://127.0.0.1:${primaryPort}`,
      '--shadow',
      shadowUrl,
      '--reports',
      reports,
      '--window',
      '10s',
      ...extra,
    ],
    {},
    port,
  )
  children.push(child)
  return { port, reports, child }
}

// --- the trackers and their traffic -------------------------------------------------------------

const primary = await startTracker('overlord_bench_sr_primary')
const shadow = await startTracker('overlord_bench_sr_shadow')
const names = Array.from({ length: CHARACTERS }, (_, i) => `Bench Char ${String(i).padStart(3, '0')}`)

async function plugin(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/position`, { headers: { 'X-Plugin-Secret': SECRET } })
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  return ws
}
const toPrimary = await plugin(primary.port)
const toShadow = await plugin(shadow.port)
const send = (frame: Record<string, unknown>) => {
  const text = JSON.stringify(frame)
  toPrimary.send(text)
  setTimeout(() => toShadow.send(text), 50).unref()
}

let tick = 0
const frames = () => {
  const at = new Date().toISOString()
  names.forEach((name, i) => {
    send({
      type: 'telemetry',
      character_name: name,
      char_tag: 'bench',
      session_id: `s-${i}`,
      timestamp: at,
      ew: 10 + i + tick * 0.013,
      ns: -20 - tick * 0.007,
      z: 0.5,
      kills: tick * 3 + i,
      kills_per_hour: '340.5',
      onlinetime: '00:10:00',
      deaths: '1',
      total_deaths: '57',
      rares_found: 0,
      prismatic_taper_count: '120',
      vt_state: 'Combat',
    })
    if (tick % 5 === 0) {
      send({
        type: 'character_stats',
        character_name: name,
        timestamp: at,
        level: 200 + i,
        total_xp: 1e9 + tick,
        unassigned_xp: 0,
        luminance_earned: 1000,
        luminance_total: 2000,
        deaths: 3,
        attributes: { strength: 100 + i },
      })
      send({
        type: 'combat_stats',
        character_name: name,
        timestamp: at,
        session_id: `s-${i}`,
        stats: { fire: { damage: tick * 10 }, monsters: { drudge: tick } },
      })
      send({ type: 'quest', character_name: name, timestamp: at, quest_name: 'Bench Quest', countdown: '1h' })
    }
  })
  tick += 1
}
frames()
const traffic = setInterval(frames, 2000)
await sleep(3000)

// --- the proxies --------------------------------------------------------------------------------

const stallSockets = new Set<net.Socket>()
const stall = net.createServer((s) => {
  stallSockets.add(s)
  s.on('error', () => {})
})
await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r))
const stallUrl = `http://127.0.0.1:${(stall.address() as net.AddressInfo).port}`
const closedUrl = `http://127.0.0.1:${await freePort()}`

const proxies = {
  'proxy, shadow up': await startProxy(primary.port, `http://127.0.0.1:${shadow.port}`),
  'proxy, shadow down (port closed)': await startProxy(primary.port, closedUrl),
  'proxy, shadow stalled': await startProxy(primary.port, stallUrl),
  'proxy, --sample 0': await startProxy(primary.port, `http://127.0.0.1:${shadow.port}`, ['--sample', '0']),
  // A sampled mirror: a fifth of users' reads compared, a fifth of the shadow's CPU.
  'proxy, shadow up, --sample 0.2': await startProxy(primary.port, `http://127.0.0.1:${shadow.port}`, [
    '--sample',
    '0.2',
  ]),
}

// --- the load -----------------------------------------------------------------------------------

const cookie = `session=${new Sessions({ secretKey: SECRET_KEY }).mint(USER, Date.now())}`
const headers = { cookie, 'x-forwarded-for': '203.0.113.7', accept: 'application/json' }
/** A dashboard's reads, in proportion: the player list most, per-character panels, the map trails. */
const MIX: string[] = []
names.forEach((n, i) => {
  const c = encodeURIComponent(n)
  MIX.push('/live', '/live', `/stats/${c}`)
  if (i % 2 === 0) MIX.push(`/character-stats/${c}`, `/combat-stats/${c}`)
  if (i % 4 === 0) MIX.push('/trails?seconds=600', '/total-kills', '/total-rares', '/quest-status')
})

const pools = new Map<number, Pool>()
const poolFor = (port: number) => {
  let p = pools.get(port)
  if (p === undefined) {
    p = new Pool(`http://127.0.0.1:${port}`, { connections: Math.max(64, CONCURRENCY * 2) })
    pools.set(port, p)
  }
  return p
}

let errors = 0
async function read(port: number, path: string): Promise<number> {
  const t0 = performance.now()
  try {
    const res = await poolFor(port).request({ method: 'GET', path, headers })
    await res.body.arrayBuffer()
    if (res.statusCode !== 200) errors += 1
  } catch {
    errors += 1
  }
  return performance.now() - t0
}

/** `rate` requests/s for `ms`, sent on schedule whatever the answers (open loop). */
async function openLoop(port: number, ms: number, rate: number): Promise<number[]> {
  const times: number[] = []
  const inFlight: Promise<void>[] = []
  const start = performance.now()
  let sent = 0
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate)
    for (; sent < due; sent++) {
      const path = MIX[sent % MIX.length]!
      inFlight.push(read(port, path).then((t) => void times.push(t)))
    }
    await sleep(2)
  }
  await Promise.all(inFlight)
  return times
}

/** `CONCURRENCY` clients back to back for `ms`. */
async function closedLoop(port: number, ms: number): Promise<{ rps: number; times: number[] }> {
  const times: number[] = []
  const end = performance.now() + ms
  let n = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) times.push(await read(port, MIX[n++ % MIX.length]!))
    }),
  )
  return { rps: times.length / (ms / 1000), times }
}

function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

const targets: [string, number, ChildProcess | undefined][] = [
  ['direct to the primary', primary.port, undefined],
  ...Object.entries(proxies).map(([name, p]) => [name, p.port, p.child] as [string, number, ChildProcess]),
]
const PAUSE_MS = 2000
const loads: number[] = []
const loadSampler = setInterval(() => loads.push(loadavg()[0]!), 60_000)
// Warm-up: connections, JIT, caches.
for (const [, port] of targets) await openLoop(port, 1000, RATES[0]!)

interface Scenario {
  times: number[]
  seconds: number
  cpu: { proxy: number; primary: number; shadow: number }
}
const latency = new Map<number, Map<string, Scenario>>()
const trackerPids = { primary: children[0]?.pid, shadow: children[1]?.pid }
for (const rate of RATES) {
  const byTarget = new Map<string, Scenario>()
  latency.set(rate, byTarget)
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < targets.length; k++) {
      const [name, port, child] = targets[(k + round) % targets.length]!
      await sleep(PAUSE_MS)
      const cpu0 = [cpuSeconds(child?.pid), cpuSeconds(trackerPids.primary), cpuSeconds(trackerPids.shadow)]
      const times = await openLoop(port, SCENARIO_MS, rate)
      const cpu1 = [cpuSeconds(child?.pid), cpuSeconds(trackerPids.primary), cpuSeconds(trackerPids.shadow)]
      const agg = byTarget.get(name) ?? { times: [], seconds: 0, cpu: { proxy: 0, primary: 0, shadow: 0 } }
      agg.times.push(...times)
      agg.seconds += SCENARIO_MS / 1000
      agg.cpu.proxy += cpu1[0]! - cpu0[0]!
      agg.cpu.primary += cpu1[1]! - cpu0[1]!
      agg.cpu.shadow += cpu1[2]! - cpu0[2]!
      byTarget.set(name, agg)
      const p = percentiles(times)
      console.error(
        `${rate}/s round ${round + 1} ${name}: p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms`,
      )
    }
  }
}

const ceiling = new Map<string, { rps: number[]; p99: number[] }>()
const ceilingTargets = [
  ['direct to the primary', primary.port],
  ['proxy, shadow up', proxies['proxy, shadow up'].port],
  ['proxy, --sample 0', proxies['proxy, --sample 0'].port],
] as const
for (let rep = 0; rep < 2; rep++) {
  const order = rep === 0 ? ceilingTargets : [...ceilingTargets].reverse()
  for (const [name, port] of order) {
    await sleep(PAUSE_MS)
    const { rps, times } = await closedLoop(port, CEILING_MS)
    const p = percentiles(times)
    const agg = ceiling.get(name) ?? { rps: [], p99: [] }
    agg.rps.push(rps)
    agg.p99.push(p.p99)
    ceiling.set(name, agg)
    console.error(
      `ceiling ${name}: ${rps.toFixed(0)}/s, p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms`,
    )
  }
}

// --- what the proxies recorded ------------------------------------------------------------------

clearInterval(traffic)
clearInterval(loadSampler)
const recorded = new Map<string, Record<string, number>>()
for (const [name, p] of Object.entries(proxies)) {
  p.child.kill('SIGTERM')
  await new Promise((r) => p.child.once('exit', r))
  const text = await readFile(join(p.reports, 'ledger.ndjson'), 'utf8')
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ShadowReadLedgerEntry)
  const sum: Record<string, number> = {
    windows: lines.length,
    requests: 0,
    mirrored: 0,
    compared: 0,
    clean: 0,
    mismatched: 0,
    lagExplained: 0,
    droppedQueue: 0,
    droppedJudge: 0,
    sampledOut: 0,
    shadowErrors: 0,
  }
  for (const e of lines) {
    for (const r of e.routes) {
      sum.requests! += r.requests
      sum.mirrored! += r.mirrored
      sum.compared! += r.compared
      sum.clean! += r.clean
      sum.mismatched! += r.mismatched
      sum.lagExplained! += r.lagExplained
      sum.droppedQueue! += r.dropped.queue
      sum.droppedJudge! += r.dropped.judge
      sum.sampledOut! += r.sampledOut
      sum.shadowErrors! += Object.values(r.shadowErrors).reduce((a, b) => a + (b ?? 0), 0)
    }
  }
  recorded.set(name, sum)
}

const fmt = (n: number) => (n >= 10 ? n.toFixed(1) : n.toFixed(2))
console.log(`\nload average during the run (1-minute samples): ${loads.map((l) => l.toFixed(1)).join(', ')}`)
const pct = (cpu: number, seconds: number) =>
  Number.isNaN(cpu) ? '—' : `${Math.round((cpu / seconds) * 100)} %`
for (const [rate, byTarget] of latency) {
  console.log(
    `\nlatency at ${rate} req/s (open loop), ${ROUNDS} × ${SCENARIO_MS / 1000} s per path, ${CHARACTERS} characters`,
  )
  console.log('| path | requests | p50 | p99 | p99.9 | max | CPU proxy / primary / shadow |')
  console.log('|---|---|---|---|---|---|---|')
  for (const [name, agg] of byTarget) {
    const s = [...agg.times].sort((a, b) => a - b)
    const p = percentiles(agg.times)
    const p999 = s[Math.min(s.length - 1, Math.floor(s.length * 0.999))]!
    const cpu = `${name.startsWith('direct') ? '—' : pct(agg.cpu.proxy, agg.seconds)} / ${pct(agg.cpu.primary, agg.seconds)} / ${pct(agg.cpu.shadow, agg.seconds)}`
    console.log(
      `| ${name} | ${p.n} | ${fmt(p.p50)} ms | ${fmt(p.p99)} ms | ${fmt(p999)} ms | ${fmt(s.at(-1)!)} ms | ${cpu} |`,
    )
  }
}
console.log(
  `\nthroughput ceiling: ${CONCURRENCY} clients back to back, ${CEILING_MS / 1000} s each, two runs`,
)
console.log('| path | requests/s | p99 |')
console.log('|---|---|---|')
for (const [name, c] of ceiling) {
  console.log(`| ${name} | ${c.rps.map((x) => x.toFixed(0)).join(', ')} | ${c.p99.map(fmt).join(', ')} ms |`)
}
console.log('\nrecorded by each proxy (whole run):')
console.log(
  '| proxy | windows | requests | mirrored | compared | clean | mismatched | lag-explained | dropped (queue/judge) | shadow errors | sampled out |',
)
console.log('|---|---|---|---|---|---|---|---|---|---|---|')
for (const [name, s] of recorded) {
  console.log(
    `| ${name} | ${s.windows} | ${s.requests} | ${s.mirrored} | ${s.compared} | ${s.clean} | ${s.mismatched} | ${s.lagExplained} | ${s.droppedQueue}/${s.droppedJudge} | ${s.shadowErrors} | ${s.sampledOut} |`,
  )
}
console.log(`\nuser-facing errors (non-200 or failed): ${errors}`)

toPrimary.close()
toShadow.close()
for (const s of stallSockets) s.destroy()
stall.close()
await Promise.all([...pools.values()].map((p) => p.close()))
stopAll()
