/**
 * Ingest and fan-out benchmark (not a test). Starts the tracker as its own process on a real
 * PostgreSQL, drives N plugin sockets at a total rate and M browser sockets from this process,
 * and prints sustained ingest and persist rates, ingest→browser latency, and the tracker's CPU
 * and RSS. Usage and recorded figures: bench/README.md.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import pg from 'pg'
import WebSocket from 'ws'

const { values: a } = parseArgs({
  options: {
    plugins: { type: 'string', default: '70' },
    rate: { type: 'string', default: '20000' },
    duration: { type: 'string', default: '20' },
    firehose: { type: 'string', default: '0' },
    filtered: { type: 'string', default: '0' },
    stalled: { type: 'string', default: '0' },
    mix: { type: 'string', default: 'telemetry' }, // telemetry | fleet (telemetry + vitals + chat + rare)
    hostile: { type: 'string', default: '0' }, // percent of frames drawn from HOSTILE (issue 7 soak)
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/overlord_bench' },
  },
})
const N = Number(a.plugins)
const RATE = Number(a.rate)
const DURATION_S = Number(a.duration)
const SECRET = 'bench-secret'
const now = () => performance.timeOrigin + performance.now()

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as net.AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

async function resetDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1)
  const admin = new pg.Client({ connectionString: url.replace(`/${name}`, '/postgres') })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin.end()
}

const metrics = async (base: string) =>
  (await (await fetch(`${base}/metrics.json`)).json()) as Record<string, number>

await resetDatabase(a.database)
const port = await freePort()
const child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
  env: {
    ...process.env,
    PORT: String(port),
    DATABASE_URL: a.database,
    SHARED_SECRET: SECRET,
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
})
const base = `http://127.0.0.1:${port}`
for (;;) {
  try {
    await metrics(base)
    break
  } catch {
    await new Promise((r) => setTimeout(r, 100))
  }
}

// Browsers live in a worker thread: receiving 100k+ messages/s must not stall the senders.
const browsersWorker = new Worker(new URL('./browsers-worker.ts', import.meta.url), {
  workerData: {
    port,
    firehose: Number(a.firehose),
    filtered: Number(a.filtered),
    stalled: Number(a.stalled),
  },
})
await once(browsersWorker, 'message')

const plugins = await Promise.all(
  Array.from({ length: N }, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/position`, { headers: { 'X-Plugin-Secret': SECRET } })
    await once(ws, 'open')
    return ws
  }),
)

/** `depth` nested objects as JSON text. */
const nestedText = (depth: number): string => `${'{"v":'.repeat(depth)}1${'}'.repeat(depth)}`
const DEEP = nestedText(5_000)
const BIG = 'x'.repeat(10_000)

/**
 * Hostile frames an authenticated plugin could send (issue 7): each is refused with a reason,
 * or (the invented names) accepted and bounded by the live state's caches.
 */
const HOSTILE: ((seq: number) => string)[] = [
  () => `{"type":"telemetry","character_name":"Deep","x":${DEEP}}`,
  (n) =>
    `{"type":"telemetry","character_name":"Bad\\u0000Name","kills":${n},"timestamp":"2026-13-45T99:99:99Z"}`,
  () => '{"type":"quest","character_name":"Q","quest_name":{"toString":1}}',
  (n) => `{"type":"${n % 2 ? 'constructor' : 'toString'}","character_name":"Proto"}`,
  (n) =>
    `{"type":"telemetry","character_name":"Invented ${n}","session_id":"s${n}","kills":1,"timestamp":"${new Date().toISOString()}"}`,
  (n) => `{"type":"quest","character_name":"Invented ${n}","quest_name":"Q${n}","countdown":"${BIG}"}`,
  () => '{"type":"telemetry","character_name":"Overflow","kills":99999999999}',
  () => '{broken',
]
const HOSTILE_EVERY = Number(a.hostile) > 0 ? Math.round(100 / Number(a.hostile)) : 0

let seq = 0
const frameFor = (p: number): string => {
  seq += 1
  if (HOSTILE_EVERY > 0 && seq % HOSTILE_EVERY === 0)
    return HOSTILE[(seq / HOSTILE_EVERY) % HOSTILE.length]!(seq)
  const name = `Bench ${p}`
  const kind = a.mix === 'fleet' ? seq % 20 : 0
  if (kind === 1) return `{"type":"chat","character_name":"${name}","text":"hello ${seq}","t":${now()}}`
  if (kind === 2)
    return `{"type":"vitals","character_name":"${name}","health_current":100,"vitae":0,"t":${now()}}`
  if (kind === 3 && seq % 200 === 3)
    return `{"type":"rare","character_name":"${name}","name":"Gem","ew":1,"ns":2,"z":0,"t":${now()}}`
  return `{"type":"telemetry","character_name":"${name}","char_tag":"b","session_id":"s","timestamp":"${new Date().toISOString()}","ew":${seq % 100},"ns":-12.5,"z":0,"kills":${seq},"kills_per_hour":"340.5","onlinetime":"00:01:00","deaths":"0","total_deaths":"3","rares_found":0,"prismatic_taper_count":"57","vt_state":"Combat","t":${now()}}`
}

const TICK_MS = 10
const start = now()
const m0 = await metrics(base)
let sent = 0
const rssSamples: number[] = []
const sampler = setInterval(async () => rssSamples.push((await metrics(base)).process_rss_bytes!), 1000)
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
const sendSeconds = (now() - start) / 1000
const m1 = await metrics(base)
// Let the writer drain, then measure how long persistence took overall.
let m2 = m1
while (m2.persist_pending! > 0 || m2.frames_received! < sent) {
  await new Promise((r) => setTimeout(r, 100))
  m2 = await metrics(base)
}
const drainSeconds = (now() - start) / 1000
clearInterval(sampler)

browsersWorker.postMessage('report')
const [{ messages: browserMessages, histogram, bucketMs, utilization }] = (await once(
  browsersWorker,
  'message',
)) as [{ messages: number; histogram: Uint32Array; bucketMs: number; utilization: number }]
await browsersWorker.terminate()
const samples = histogram.reduce((sum, n) => sum + n, 0)
const quantileMs = (q: number): number => {
  let seen = 0
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!
    if (seen > q * samples) return Math.round((i + 1) * bucketMs * 10) / 10
  }
  return Number.NaN
}
const cpuSeconds =
  (m1.process_cpu_user_us! +
    m1.process_cpu_system_us! -
    m0.process_cpu_user_us! -
    m0.process_cpu_system_us!) /
  1e6
const result = {
  plugins: N,
  target_rate: RATE,
  browsers: { firehose: Number(a.firehose), filtered: Number(a.filtered), stalled: Number(a.stalled) },
  frames_sent: sent,
  ingested_per_s: Math.round((m1.frames_accepted! - m0.frames_accepted!) / sendSeconds),
  persisted_per_s_sustained: Math.round((m2.rows_persisted! - m0.rows_persisted!) / drainSeconds),
  persist_backlog_at_end: m1.persist_pending,
  drain_s_after_send: Math.round((drainSeconds - sendSeconds) * 10) / 10,
  browser_messages_per_s: Math.round(browserMessages / sendSeconds),
  // Above ~0.8 the receiving side, not the tracker, dominates the latency figures.
  browser_worker_utilization: Math.round(utilization * 100) / 100,
  latency_ms: {
    samples,
    p50: quantileMs(0.5),
    p99: quantileMs(0.99),
    p999: quantileMs(0.999),
    max: quantileMs(1 - 1e-12),
  },
  tracker_event_loop_delay_ms: {
    p50: m1.event_loop_delay_p50_ms,
    p99: m1.event_loop_delay_p99_ms,
    max: m1.event_loop_delay_max_ms,
  },
  tracker_cpu_pct: Math.round((cpuSeconds / sendSeconds) * 100),
  tracker_rss_mb: {
    start: Math.round((rssSamples[0] ?? 0) / 2 ** 20),
    end: Math.round((rssSamples.at(-1) ?? 0) / 2 ** 20),
    max: Math.round(Math.max(...rssSamples) / 2 ** 20),
    every_10s: rssSamples.filter((_, i) => i % 10 === 9).map((b) => Math.round(b / 2 ** 20)),
  },
  slow_disconnects: m2.browser_slow_disconnects,
  persist_dropped: m2.persist_dropped,
  persist_rejected: m2.persist_rejected,
  frames_bad: m2.frames_bad,
  bad_by_reason: m2.bad_by_reason,
  handler_errors: m2.handler_errors,
}
console.log(JSON.stringify(result, null, 2))
for (const ws of plugins) ws.terminate()
child.kill('SIGTERM')
await once(child, 'exit')
