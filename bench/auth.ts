/**
 * What sessions and logins cost the tracker (README "Logins, sessions and users").
 *
 *   node bench/auth.ts [--duration 5] [--concurrency 20] [--logins 8]
 *
 * Starts `overlord-ts serve` as its own process on a fresh database `overlord_bench_auth`, creates a
 * user, then measures from this process, one scenario after the other:
 *   1. `GET /live` under internal trust, `--concurrency` clients for `--duration` s;
 *   2. the same with a session cookie through a "proxy" (X-Forwarded-For): HMAC check + user cache;
 *   3. `POST /login` by `--logins` clients at once (bcrypt cost 12), while one client pings `/health`
 *      every 10 ms: the ping's latency shows whether hashing holds the event loop;
 *   4. the same ping with no logins, as the baseline.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { createPool, ensureDatabase } from '../src/db/pool.ts'
import { createUser } from '../src/db/users.ts'
import { freePort } from './tee-support.ts'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '20' },
    logins: { type: 'string', default: '8' },
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/overlord_bench_auth' },
  },
})
const durationMs = Number(values.duration) * 1000
const concurrency = Number(values.concurrency)

const databaseUrl = values.database
const name = new URL(databaseUrl).pathname.slice(1)
await ensureDatabase(databaseUrl, name)
const admin = createPool({ connectionString: databaseUrl, max: 1 })
await admin.query('DROP TABLE IF EXISTS users')
await admin.end()

const port = await freePort()
const tracker: ChildProcess = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
  env: {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    SECRET_KEY: 'bench',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
})
const base = `http://127.0.0.1:${port}`
for (;;) {
  const up = await fetch(`${base}/health`).catch(() => undefined)
  if (up?.ok) break
  await new Promise((r) => setTimeout(r, 100))
}
const db = createPool({ connectionString: databaseUrl, max: 1 })
await createUser(db, { username: 'bench', password: 'bench-password' })
await db.end()

const pool = new Pool(base, { connections: concurrency + 2 })
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0
const summary = (label: string, times: number[], ms: number) => {
  const s = [...times].sort((a, b) => a - b)
  console.log(
    `${label.padEnd(44)} ${(times.length / (ms / 1000)).toFixed(0).padStart(7)}/s  p50 ${pct(s, 0.5).toFixed(2)} ms  p99 ${pct(s, 0.99).toFixed(2)} ms  max ${(s.at(-1) ?? 0).toFixed(2)} ms`,
  )
}

/** `clients` loops sending `request` for `ms`; the latencies of every request. */
async function load(clients: number, ms: number, request: () => Promise<void>): Promise<number[]> {
  const times: number[] = []
  const end = performance.now() + ms
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now()
        await request()
        times.push(performance.now() - t0)
      }
    }),
  )
  return times
}

async function get(path: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await pool.request({ path, method: 'GET', headers })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode}`)
}

const login = await fetch(`${base}/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.1' },
  body: JSON.stringify({ username: 'bench', password: 'bench-password' }),
})
const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
const proxied = { cookie, 'x-forwarded-for': '192.0.2.1' }

summary('GET /live, internal trust', await load(concurrency, durationMs, () => get('/live')), durationMs)
summary(
  'GET /live, session cookie via proxy',
  await load(concurrency, durationMs, () => get('/live', proxied)),
  durationMs,
)

/** `/health` every 10 ms while `during` runs: its latencies. */
async function ping(during: Promise<unknown>): Promise<number[]> {
  const times: number[] = []
  let done = false
  void during.finally(() => (done = true))
  while (!done) {
    const t0 = performance.now()
    await get('/health')
    times.push(performance.now() - t0)
    await new Promise((r) => setTimeout(r, 10))
  }
  return times
}

let addr = 0
const loginOnce = async () => {
  // A fresh address each time, so the bench measures hashing, not the rate limit.
  const res = await pool.request({
    path: '/login',
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': `10.${(addr >> 16) & 255}.${(addr >> 8) & 255}.${addr++ & 255}`,
    },
    body: JSON.stringify({ username: 'bench', password: 'bench-password' }),
  })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`login: ${res.statusCode}`)
}
const logins = load(Number(values.logins), durationMs, loginOnce)
const pingsDuring = await ping(logins)
summary(`POST /login, ${values.logins} at once (bcrypt 12)`, await logins, durationMs)
summary('  GET /health every 10 ms meanwhile', pingsDuring, durationMs)
const idle = new Promise((r) => setTimeout(r, durationMs))
summary('GET /health every 10 ms, no logins', await ping(idle), durationMs)

await pool.close()
tracker.kill('SIGTERM')
