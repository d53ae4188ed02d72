/**
 * Scale-out benchmark (issue 11, not a test). In one run, compares fan-out to firehose browsers
 * across tracker layouts, each on a fresh PostgreSQL database and a fresh NATS bus name:
 *
 * - `single`: one `serve` process without NATS (the mode before issue 11);
 * - `workers2`: one `serve --workers 2` with NATS_URL, plugins and browsers all on its one port;
 * - `three`: three `serve --workers 1` on three ports sharing one bus (a stand-in for three
 *   machines), plugins and browsers spread evenly over them.
 *
 * Plugins send telemetry frames carrying their send time (`"t":<ms>` last, like bench/ingest.ts)
 * from this thread; browsers are raw sockets in `--receivers` worker threads
 * (bench/scale-out-receiver.ts). Prints one JSON object per setup and round — browser messages/s,
 * ingest→browser latency, slow-consumer disconnects, frames accepted, the CPU of every tracker
 * process read from /proc, the bus counters and how busy each receiver thread was — then a
 * markdown table comparing them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import pg from 'pg'
import WebSocket from 'ws'
import { destroyBus } from '../test/support/nats.ts'
import { freePort, now } from './tee-support.ts'

const { values: a } = parseArgs({
  options: {
    setups: { type: 'string', default: 'single,workers2,three' },
    rate: { type: 'string', default: '2000' },
    browsers: { type: 'string', default: '400' },
    duration: { type: 'string', default: '20' },
    plugins: { type: 'string', default: '70' },
    rounds: { type: 'string', default: '1' },
    receivers: { type: 'string', default: '2' }, // receiver worker threads
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/overlord_bench' },
    nats: { type: 'string', default: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
  },
})
const SETUPS = a.setups.split(',').map((s) => s.trim())
for (const s of SETUPS)
  if (!['single', 'workers2', 'three'].includes(s))
    throw new Error(`unknown setup ${s}: single, workers2, three`)
const N = Number(a.plugins)
const RATE = Number(a.rate)
const BROWSERS = Number(a.browsers)
const DURATION_S = Number(a.duration)
const ROUNDS = Number(a.rounds)
const RECEIVERS = Number(a.receivers)
const SECRET = 'bench-secret'
/** After sending stops, how long receivers may keep draining what is in flight. */
const DRAIN_MS = 2_000
/** SIGTERM, then SIGKILL after this long. */
const KILL_AFTER_MS = 10_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const round1 = (x: number) => Math.round(x * 10) / 10
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** Drops and creates the database, so every setup starts empty (the tracker makes its schema). */
async function resetDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1)
  const admin = new pg.Client({ connectionString: url.replace(`/${name}`, '/postgres') })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  // Created here rather than by the tracker: `--workers 2` would have both workers race to create it.
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
}

type Metrics = Record<string, unknown> & { bus?: Record<string, unknown> }

/**
 * `/metrics.json` over a connection of its own: with `--workers` connections go round-robin to
 * the workers, and a kept-alive one would always reach the same worker.
 */
function metrics(port: number): Promise<Metrics> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/metrics.json', agent: false, headers: { connection: 'close' } },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          body += d
        })
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`/metrics.json on ${port}: ${res.statusCode}`))
          else resolve(JSON.parse(body) as Metrics)
        })
      },
    )
    req.on('error', reject)
    req.setTimeout(5_000, () => req.destroy(new Error(`/metrics.json on ${port} timed out`)))
  })
}

/** The instance a metrics answer came from: the bus instance id, or the port without a bus. */
const instanceOf = (m: Metrics, port: number): string =>
  (m.bus?.instance as string | undefined) ?? `port ${port}`

/**
 * The latest `/metrics.json` of every instance behind `ports`, sampling each port until
 * `perPort` distinct instances answered there (or `tries` requests were made).
 */
async function sampleInstances(ports: number[], perPort: number, tries = 20): Promise<Map<string, Metrics>> {
  const seen = new Map<string, Metrics>()
  for (const port of ports) {
    const here = new Set<string>()
    for (let i = 0; i < tries && here.size < perPort; i++) {
      const m = await metrics(port)
      const id = instanceOf(m, port)
      here.add(id)
      seen.set(id, m)
    }
  }
  return seen
}

// ---- tracker processes --------------------------------------------------------------------

interface Tracker {
  child: ChildProcess
  port: number
  exited: Promise<void>
}
/** Every tracker started and not yet known dead, for the cleanup on any exit. */
const running = new Set<Tracker>()

function startTracker(port: number, env: NodeJS.ProcessEnv, args: string[]): Tracker {
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve', ...args], {
    env: { ...env, PORT: String(port) },
    // Its log lines (stdout) go to our stderr: stdout is the JSON results.
    stdio: ['ignore', 2, 2],
  })
  const t: Tracker = {
    child,
    port,
    exited: once(child, 'exit').then(() => {
      running.delete(t)
    }),
  }
  running.add(t)
  return t
}

/** How many distinct instances answered on the tracker's port. */
async function waitReady(t: Tracker, instances: number): Promise<number> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (t.child.exitCode !== null || t.child.signalCode !== null)
      throw new Error(`tracker on port ${t.port} exited at start (${t.child.exitCode ?? t.child.signalCode})`)
    try {
      await metrics(t.port)
      break
    } catch {}
    if (Date.now() > deadline)
      throw new Error(`tracker on port ${t.port} did not answer /metrics.json in 60 s`)
    await sleep(100)
  }
  // With --workers every worker must be listening: new connections go to each in turn.
  for (;;) {
    const seen = await sampleInstances([t.port], instances, 10)
    if (seen.size >= instances) return seen.size
    if (Date.now() > deadline) {
      console.error(
        `warning: only ${seen.size} of ${instances} workers on port ${t.port} answered /metrics.json`,
      )
      return seen.size
    }
    await sleep(250)
  }
}

/** A process's children, grandchildren and so on (cluster workers), from /proc. */
function descendants(pid: number): number[] {
  const out: number[] = []
  let tasks: string[] = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const task of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) {
        out.push(Number(c), ...descendants(Number(c)))
      }
    } catch {}
  }
  return out
}

const processTree = (trackers: Tracker[]): number[] =>
  trackers.flatMap((t) => (t.child.pid === undefined ? [] : [t.child.pid, ...descendants(t.child.pid)]))

/** utime + stime of a process in seconds, or undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 of stat(5); f[0] is field 3 (state).
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

/** Whether a pid is still a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

const pidsOf = (name: string): number[] => {
  try {
    return execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}
const sumCpu = (pids: number[]): number => pids.reduce((s, p) => s + (cpuSeconds(p) ?? 0), 0)

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((s, x) => s + x, 0)
  return { busy: total - f[3]! - (f[4] ?? 0), total }
}

/**
 * Stops trackers as an operator would (SIGTERM to each `serve`), and SIGKILLs every process of
 * theirs, cluster workers included, still alive after 10 s. Returns how many needed the SIGKILL.
 */
async function stopTrackers(trackers: Tracker[]): Promise<{ killed: number; stop_s: number }> {
  const t0 = now()
  const pids = processTree(trackers)
  for (const t of trackers) t.child.kill('SIGTERM')
  const deadline = Date.now() + KILL_AFTER_MS
  while (Date.now() < deadline && pids.some(alive)) await sleep(100)
  const left = pids.filter(alive)
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  await Promise.all(trackers.map((t) => t.exited))
  return { killed: left.length, stop_s: round1((now() - t0) / 1000) }
}

/** Last resort on any exit: nothing this script started may outlive it. */
function killEverything(): void {
  for (const t of running) {
    for (const pid of processTree([t])) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
}
/** The bus of the setup running now, deleted on an interrupt too. */
let currentBus: string | undefined
process.on('exit', killEverything)
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, async () => {
    console.error(`${sig}: killing the trackers`)
    killEverything()
    if (currentBus !== undefined)
      await Promise.race([destroyBus(currentBus, a.nats).catch(() => {}), sleep(3_000)])
    process.exit(130)
  })
}

// ---- load -------------------------------------------------------------------------------

let seq = 0
const frameFor = (p: number): string => {
  seq += 1
  return `{"type":"telemetry","character_name":"Bench ${p}","char_tag":"b","session_id":"s","timestamp":"${new Date().toISOString()}","ew":${seq % 100},"ns":-12.5,"z":0,"kills":${seq},"kills_per_hour":"340.5","onlinetime":"00:01:00","deaths":"0","total_deaths":"3","rares_found":0,"prismatic_taper_count":"57","vt_state":"Combat","t":${now()}}`
}

interface WindowCounts {
  messages: number
  utilization: number
}
interface ReceiverReport extends WindowCounts {
  messagesAfterDrain: number
  histogram: Uint32Array
  bucketMs: number
  warmHistogram: Uint32Array
  localHistogram: Uint32Array | null
  busHistogram: Uint32Array | null
  maxBySecond: number[]
  closedByServer: number
  closeCodes: Record<string, number>
  stillOpenByPort: Record<string, number>
}

const ask = async <T>(w: Worker, msg: string): Promise<T> => {
  const reply = once(w, 'message')
  w.postMessage(msg)
  return (await reply)[0] as T
}

async function runSetup(setup: string, round: number): Promise<Record<string, unknown>> {
  const busName = `bench${Date.now()}${setup}`
  const useBus = setup !== 'single'
  await resetDatabase(a.database)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: a.database,
    SHARED_SECRET: SECRET,
    LOG_LEVEL: 'warn',
  }
  delete env.NATS_URL
  delete env.NATS_NAME
  if (useBus) {
    Object.assign(env, { NATS_URL: a.nats, NATS_NAME: busName })
    currentBus = busName
  }

  const trackers: Tracker[] = []
  const receivers: Worker[] = []
  const plugins: WebSocket[] = []
  let result: Record<string, unknown> | undefined
  try {
    // ---- trackers
    let ready = 0
    if (setup === 'three') {
      // One after another: the first makes the schema, the stream and the lease bucket.
      for (let i = 0; i < 3; i++) {
        const t = startTracker(await freePort(), env, ['--workers', '1'])
        trackers.push(t)
        ready += await waitReady(t, 1)
      }
    } else {
      if (setup === 'workers2') {
        // The schema first, by one process without the bus: at b380b84 two workers starting on
        // an empty database raced to create it and the one that lost never served, leaving one.
        const { NATS_URL: _url, NATS_NAME: _name, ...noBus } = env
        const primer = startTracker(await freePort(), noBus, ['--workers', '1'])
        try {
          await waitReady(primer, 1)
        } finally {
          await stopTrackers([primer])
        }
      }
      const t = startTracker(await freePort(), env, ['--workers', setup === 'workers2' ? '2' : '1'])
      trackers.push(t)
      ready += await waitReady(t, setup === 'workers2' ? 2 : 1)
    }
    const ports = trackers.map((t) => t.port)
    const instancesPerPort = setup === 'workers2' ? 2 : 1
    const trackerPids = processTree(trackers)

    // ---- browsers, spread evenly over the ports and the receiver threads, open before the load
    const browserPorts = Array.from({ length: BROWSERS }, (_, i) => ports[i % ports.length]!)
    for (let r = 0; r < RECEIVERS; r++) {
      const w = new Worker(new URL('./scale-out-receiver.ts', import.meta.url), {
        workerData: { ports: browserPorts.filter((_, i) => i % RECEIVERS === r), trackerPorts: ports },
      })
      w.on('error', (err) => console.error(`${setup}: receiver thread ${r} failed: ${err}`))
      receivers.push(w)
    }
    const opened = await Promise.all(
      receivers.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            w.once('message', (m: { opened: number }) => resolve(m.opened))
            w.once('error', reject)
          }),
      ),
    )

    // ---- plugins, spread over the ports
    for (let p = 0; p < N; p++) {
      const ws = new WebSocket(`ws://127.0.0.1:${ports[p % ports.length]}/ws/position`, {
        headers: { 'X-Plugin-Secret': SECRET },
      })
      ws.on('error', () => {})
      await once(ws, 'open')
      plugins.push(ws)
    }
    // Let the handshakes and the first state settle before measuring.
    await sleep(500)

    // ---- load
    const natsPids = pidsOf('nats-server')
    const pgPids = pidsOf('postgres')
    const cpu0 = new Map(trackerPids.map((p) => [p, cpuSeconds(p) ?? 0]))
    const nats0 = sumCpu(natsPids)
    const pg0 = sumCpu(pgPids)
    const self0 = process.cpuUsage()
    const machine0 = machineTicks()
    const senderElu0 = performance.eventLoopUtilization()
    for (const w of receivers) w.postMessage('start')
    const start = now()
    let sent = 0
    const TICK_MS = 10
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const elapsed = now() - start
        if (elapsed >= DURATION_S * 1000) {
          clearInterval(tick)
          resolve()
          return
        }
        const due = Math.floor((elapsed / 1000) * RATE) - sent
        for (let i = 0; i < due; i++) plugins[(sent + i) % N]!.send(frameFor((sent + i) % N))
        sent += Math.max(0, due)
      }, TICK_MS)
    })
    const windows = await Promise.all(receivers.map((w) => ask<WindowCounts>(w, 'stop')))
    const sendSeconds = (now() - start) / 1000
    const cpu1 = new Map(trackerPids.map((p) => [p, cpuSeconds(p)]))
    const nats1 = sumCpu(natsPids)
    const pg1 = sumCpu(pgPids)
    const self1 = process.cpuUsage(self0)
    const machine1 = machineTicks()
    const senderUtilization = performance.eventLoopUtilization(senderElu0).utilization

    await sleep(DRAIN_MS)
    const reports = await Promise.all(receivers.map((w) => ask<ReceiverReport>(w, 'report')))
    const instances = await sampleInstances(ports, instancesPerPort)

    // ---- figures
    const bucketMs = reports[0]!.bucketMs
    const merged = (pick: (r: ReceiverReport) => Uint32Array | null): Uint32Array | undefined => {
      if (pick(reports[0]!) === null) return undefined
      const h = new Uint32Array(reports[0]!.histogram.length)
      for (const r of reports) {
        const x = pick(r)!
        for (let i = 0; i < h.length; i++) h[i]! += x[i]!
      }
      return h
    }
    const percentiles = (h: Uint32Array | undefined) => {
      if (h === undefined) return null
      const samples = h.reduce((s, n) => s + n, 0)
      const quantileMs = (q: number): number => {
        let seen = 0
        for (let i = 0; i < h.length; i++) {
          seen += h[i]!
          if (seen > q * samples) return round1((i + 1) * bucketMs)
        }
        return Number.NaN
      }
      return {
        samples,
        p50: quantileMs(0.5),
        p99: quantileMs(0.99),
        p999: quantileMs(0.999),
        max: quantileMs(1 - 1e-12),
      }
    }
    const latency = percentiles(merged((r) => r.histogram))!
    const maxBySecond: number[] = []
    for (const r of reports)
      for (const [i, x] of r.maxBySecond.entries()) maxBySecond[i] = Math.max(maxBySecond[i] ?? 0, x)
    const messagesInWindow = windows.reduce((s, w) => s + w.messages, 0)
    const messagesAfterDrain = reports.reduce((s, r) => s + r.messagesAfterDrain, 0)
    const closeCodes: Record<string, number> = {}
    for (const r of reports)
      for (const [code, n] of Object.entries(r.closeCodes)) closeCodes[code] = (closeCodes[code] ?? 0) + n
    const stillOpenByPort: Record<string, number> = {}
    for (const r of reports)
      for (const [port, n] of Object.entries(r.stillOpenByPort))
        stillOpenByPort[port] = (stillOpenByPort[port] ?? 0) + n
    const num = (m: Metrics, k: string): number => (typeof m[k] === 'number' ? (m[k] as number) : 0)
    const ms = [...instances.values()]
    const framesAccepted = ms.reduce((s, m) => s + num(m, 'frames_accepted'), 0)
    const cpuByPid: Record<string, number> = {}
    let trackerCpu = 0
    for (const [pid, c0] of cpu0) {
      const c1 = cpu1.get(pid)
      if (c1 === undefined) continue
      cpuByPid[pid] = Math.round(((c1 - c0) / sendSeconds) * 100)
      trackerCpu += c1 - c0
    }
    const busTotals: Record<string, number> = {}
    for (const m of ms)
      for (const [k, v] of Object.entries(m.bus ?? {}))
        if (typeof v === 'number') busTotals[k] = (busTotals[k] ?? 0) + v
    const receiverSlow = closeCodes['1013'] ?? 0
    result = {
      setup,
      round,
      bus: useBus ? busName : null,
      ports,
      tracker_processes: trackerPids.length,
      // Instances that answered /metrics.json before the load (with --workers 2: both workers?).
      instances_ready: ready,
      plugins: N,
      target_rate: RATE,
      duration_s: round1(sendSeconds),
      frames_sent: sent,
      frames_accepted: framesAccepted,
      frames_accepted_by_instance: Object.fromEntries(
        ms.map((m, i) => [[...instances.keys()][i]!, num(m, 'frames_accepted')]),
      ),
      browsers: {
        requested: BROWSERS,
        opened: opened.reduce((s, n) => s + n, 0),
        still_open_by_port: stillOpenByPort,
      },
      browser_messages_per_s: Math.round(messagesInWindow / sendSeconds),
      // Every firehose browser should get every frame: what reached them by the end of the drain.
      browser_messages_expected: sent * BROWSERS,
      browser_messages_after_drain: messagesAfterDrain,
      delivered_fraction: Math.round((messagesAfterDrain / (sent * BROWSERS)) * 10_000) / 10_000,
      latency_ms: latency,
      latency_ms_after_2s: percentiles(merged((r) => r.warmHistogram)),
      // With several instances: frames whose plugin is on the browser's own instance, and frames over the bus.
      latency_ms_local: percentiles(merged((r) => r.localHistogram)),
      latency_ms_via_bus: percentiles(merged((r) => r.busHistogram)),
      latency_max_ms_by_second: maxBySecond.map((x) => Math.round(x)),
      slow_disconnects: {
        // Browsers the tracker closed with 1013 (and any other server close), seen by the receivers.
        receiver_1013: receiverSlow,
        receiver_closes_by_code: closeCodes,
        // browser_slow_disconnects of every instance that answered /metrics.json.
        metrics_sum: ms.reduce((s, m) => s + num(m, 'browser_slow_disconnects'), 0),
        instances_sampled: instances.size,
      },
      // Per cent of one core over the send window, every tracker process (cluster primary and workers).
      tracker_cpu_pct: Math.round((trackerCpu / sendSeconds) * 100),
      tracker_cpu_pct_by_pid: cpuByPid,
      other_cpu_pct: {
        nats_server: Math.round(((nats1 - nats0) / sendSeconds) * 100),
        // The postgres processes that existed when the load started (backends opened later are missed).
        postgres: Math.round(((pg1 - pg0) / sendSeconds) * 100),
        bench_process: Math.round(((self1.user + self1.system) / 1e6 / sendSeconds) * 100),
        machine_busy_of_all_cores: Math.round(
          ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100,
        ),
      },
      // Above ~0.8 a receiver thread, not the tracker, dominates the latency figures.
      receiver_utilization: windows.map((w) => Math.round(w.utilization * 100) / 100),
      sender_utilization: Math.round(senderUtilization * 100) / 100,
      tracker_event_loop_delay_p99_ms: Object.fromEntries(
        [...instances].map(([id, m]) => [id, m.event_loop_delay_p99_ms]),
      ),
      browsers_by_instance: Object.fromEntries([...instances].map(([id, m]) => [id, m.browsers])),
      bus_totals: useBus ? busTotals : null,
      bus_by_instance: useBus
        ? Object.fromEntries([...instances].map(([id, m]) => [id, m.bus ?? null]))
        : null,
    }
    return result
  } finally {
    for (const ws of plugins) ws.terminate()
    await Promise.all(
      receivers.map(async (w) => {
        w.postMessage('close')
        await Promise.race([once(w, 'exit'), sleep(2_000)])
        await w.terminate()
      }),
    )
    const stop = await stopTrackers(trackers)
    if (result !== undefined)
      result.tracker_stop = { ...stop, sigkilled_after_s: stop.killed > 0 ? KILL_AFTER_MS / 1000 : null }
    if (stop.killed > 0)
      console.error(
        `${setup}: ${stop.killed} tracker process(es) still up ${KILL_AFTER_MS / 1000} s after SIGTERM: SIGKILLed`,
      )
    if (useBus)
      await destroyBus(busName, a.nats).catch((err) =>
        console.error(`${setup}: deleting bus ${busName}: ${err}`),
      )
    currentBus = undefined
  }
}

const results: Record<string, unknown>[] = []
for (let r = 1; r <= ROUNDS; r++) {
  for (const setup of SETUPS) {
    const result = await runSetup(setup, r)
    console.log(JSON.stringify(result, null, 2))
    results.push(result)
  }
}

type Row = {
  setup: string
  round: number
  browser_messages_per_s: number
  latency_ms: { p50: number; p99: number; p999: number }
  slow_disconnects: { receiver_1013: number; metrics_sum: number }
  tracker_cpu_pct: number
  receiver_utilization: number[]
}
const fmt = (n: number) => n.toLocaleString('en-US').replace(/,/g, ' ')
console.log('')
console.log(`${RATE} frames/s from ${N} plugins to ${BROWSERS} firehose browsers, ${DURATION_S} s per setup`)
console.log('')
console.log(
  '| setup | browser msgs/s | p50 | p99 | p99.9 | slow disconnects | tracker CPU % | receiver utilization |',
)
console.log('|---|---|---|---|---|---|---|---|')
for (const x of results as Row[]) {
  const label = ROUNDS > 1 ? `${x.setup} #${x.round}` : x.setup
  console.log(
    `| ${label} | ${fmt(x.browser_messages_per_s)} | ${x.latency_ms.p50} ms | ${x.latency_ms.p99} ms | ${x.latency_ms.p999} ms | ${x.slow_disconnects.receiver_1013} (metrics ${x.slow_disconnects.metrics_sum}) | ${x.tracker_cpu_pct} | ${x.receiver_utilization.join(', ')} |`,
  )
}
