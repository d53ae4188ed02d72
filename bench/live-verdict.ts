/**
 * The verdict on live traffic (issue 9, "Done when"): a primary tracker process with its own 5 s
 * `/live` cache on its own phase, the shadow behind the inline tee, a simulated fleet sending
 * throughout, and `watch` sweeping both every 10 s. Prints the share of clean sweeps, the lag the
 * sweeps measured and `cutover status`. With `--diverge-at`, an HTTP proxy in front of the shadow
 * starts altering one field of one route at that second, and the run reports the first sweep that
 * caught it, on which route and field.
 *
 *   npx node bench/live-verdict.ts [--duration 600] [--characters 20] [--interval 10s]
 *                                  [--diverge-at 120 --diverge-route /live --diverge-field players.kills]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { request } from 'undici'
import { NODE, startServe, startTeeProxy } from './tee-support.ts'

const { values: a } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    characters: { type: 'string', default: '20' },
    interval: { type: 'string', default: '10s' },
    'diverge-at': { type: 'string' },
    'diverge-route': { type: 'string', default: '/live' },
    'diverge-field': { type: 'string', default: 'players.kills' },
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432' },
    seed: { type: 'string', default: '7' },
  },
})
const SECRET = 'bench-plugin-secret'
const durationS = Number(a.duration)
const children: ChildProcess[] = []
const tag = `overlord_bench_verdict_${process.pid}`
const dbs = { primary: `${tag}_primary`, shadow: `${tag}_shadow` }

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: `${a.database}/postgres` })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

const tracker = (db: string): Promise<number> => startServe(`${a.database}/${db}`, SECRET, children)

/** Alters a dotted field on every matching object of a body, through arrays (`players.kills`). */
function alter(node: any, keys: readonly string[]): number {
  if (Array.isArray(node)) return node.reduce((n: number, el) => n + alter(el, keys), 0)
  if (node === null || typeof node !== 'object') return 0
  const [head, ...rest] = keys as [string, ...string[]]
  if (rest.length > 0) return alter(node[head], rest)
  if (!(head in node)) return 0
  node[head] = typeof node[head] === 'number' ? node[head] + 1 : `${String(node[head])}-diverged`
  return 1
}

/** A real HTTP proxy in front of the shadow: after `divergeAtMs`, one field of one route is altered. */
async function divergingProxy(upstream: string, divergeAtMs: number | undefined) {
  let altered = 0
  const server = createServer(async (req, res) => {
    try {
      const up = await request(`${upstream}${req.url}`, { method: 'GET' })
      let text = await up.body.text()
      if (
        divergeAtMs !== undefined &&
        Date.now() >= divergeAtMs &&
        req.url?.startsWith(a['diverge-route']!)
      ) {
        try {
          const body = JSON.parse(text)
          if (alter(body, a['diverge-field']!.split('.')) > 0) {
            altered += 1
            text = JSON.stringify(body)
          }
        } catch {
          // Not JSON: passed through.
        }
      }
      res.writeHead(up.statusCode, { 'content-type': 'application/json' })
      res.end(text)
    } catch {
      res.writeHead(502)
      res.end()
    }
  })
  // WebSocket upgrades (/ws/live) pass through untouched: a raw tunnel to the shadow.
  server.on('upgrade', (req, socket, head) => {
    const target = new URL(upstream)
    const up = connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`]
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
      up.write(`${lines.join('\r\n')}\r\n\r\n`)
      up.write(head)
      up.pipe(socket)
      socket.pipe(up)
    })
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    altered: () => altered,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, ['src/cli/main.ts', ...args], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.push(child)
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      for (const line of d.toString().split('\n')) if (/^#\d+ /.test(line)) console.log(`  ${line}`)
    })
    child.on('exit', (code) => resolve({ code: code ?? -1, out }))
  })
}

let proxy: Awaited<ReturnType<typeof divergingProxy>> | undefined
// Interrupted: no process or database is left behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    void Promise.all(Object.values(dbs).map((db) => admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)))
      .catch(() => {})
      .finally(() => process.exit(130))
  })
}
try {
  for (const db of Object.values(dbs)) {
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
    await admin(`CREATE DATABASE ${db}`)
  }
  const shadowPort = await tracker(dbs.shadow)
  // Started 2.3 s later: the primary's /live cache refreshes on another phase than the shadow's.
  await sleep(2300)
  const primaryPort = await tracker(dbs.primary)
  const teePort = await startTeeProxy(primaryPort, shadowPort, SECRET, children)
  const started = Date.now()
  const divergeAt = a['diverge-at'] === undefined ? undefined : started + Number(a['diverge-at']) * 1000
  proxy = await divergingProxy(`http://127.0.0.1:${shadowPort}`, divergeAt)
  const fleet = run(
    [
      'simulate',
      '--url',
      `ws://127.0.0.1:${teePort}/ws/position`,
      '--characters',
      a.characters!,
      '--seed',
      a.seed!,
      '--duration',
      `${durationS + 30}s`,
    ],
    { SHARED_SECRET: SECRET },
  )
  await sleep(5000)
  const reports = await mkdtemp(join(tmpdir(), 'overlord-verdict-'))
  const common = ['--reports', reports]
  console.log(
    `primary :${primaryPort}, shadow :${shadowPort} (watched through :${new URL(proxy.url).port}), tee :${teePort}, ${a.characters} characters, watch every ${a.interval} for ${durationS} s${divergeAt === undefined ? '' : `, divergence in ${a['diverge-route']} ${a['diverge-field']} from +${a['diverge-at']} s`}`,
  )
  const watched = await run([
    'watch',
    '--primary',
    `http://127.0.0.1:${primaryPort}`,
    '--shadow',
    proxy.url,
    '--interval',
    a.interval!,
    '--jitter',
    '1s',
    '--duration',
    `${durationS}s`,
    '--tee-metrics',
    `http://127.0.0.1:${teePort}/metrics`,
    '--primary-db',
    `${a.database}/${dbs.primary}`,
    '--shadow-db',
    `${a.database}/${dbs.shadow}`,
    '--bucket-seconds',
    '60',
    ...common,
  ])
  const status = await run(['cutover', 'status', ...common])
  for (const c of children.slice(0, 3)) c.kill('SIGTERM')
  await fleet

  const files = (await readdir(reports)).filter((f) => f.startsWith('sweep-') && f.endsWith('.json')).sort()
  const sweeps = await Promise.all(
    files.map(async (f) => JSON.parse(await readFile(join(reports, f), 'utf8'))),
  )
  const clean = sweeps.filter((s) => s.verdict === 'parity')
  const behind = sweeps.map((s) => s.lag?.behind ?? 0)
  const lagMax = Math.max(0, ...sweeps.map((s) => s.lag?.maxMs ?? 0))
  const paired = sweeps.reduce((n, s) => n + (s.lag?.paired ?? 0), 0)
  console.log(
    `\nwatch exit ${watched.code}; ${sweeps.length} sweeps, ${clean.length} clean (${((100 * clean.length) / Math.max(1, sweeps.length)).toFixed(1)} %)`,
  )
  console.log(
    `lag: entities behind per sweep p50 ${behind.sort((x, y) => x - y)[Math.floor(behind.length / 2)] ?? 0}, max lag ${lagMax} ms; ${paired} entity comparisons at the same frame in all`,
  )
  const durations = sweeps.map((s) => s.durationMs).sort((x, y) => x - y)
  console.log(
    `sweep duration p50 ${durations[Math.floor(durations.length / 2)]} ms, max ${durations.at(-1)} ms`,
  )
  for (const s of sweeps.filter((x) => x.verdict !== 'parity')) {
    const dirty = s.endpoints
      .filter((e: any) => !e.clean)
      .map(
        (e: any) =>
          `${e.name}: ${e.examples
            .slice(0, 2)
            .map(
              (d: any) => `${d.class} ${d.path} ${JSON.stringify(d.primary)} vs ${JSON.stringify(d.shadow)}`,
            )
            .join('; ')}`,
      )
    const db = s.database?.withinTolerance === false ? ' database' : ''
    const errs =
      s.errors.length > 0
        ? ` errors: ${s.errors
            .slice(0, 2)
            .map((e: any) => e.message)
            .join('; ')}`
        : ''
    console.log(`  ${s.startedAt} ${s.verdict}${db}: ${dirty.join(' | ')}${errs}`)
  }
  if (divergeAt !== undefined) {
    const after = sweeps.filter((s) => Date.parse(s.startedAt) >= divergeAt)
    const first = after[0]
    const caught = first?.endpoints.flatMap((e: any) =>
      e.examples.filter((d: any) => d.status === 'mismatch').map((d: any) => `${e.name} ${d.path}`),
    )
    console.log(
      `divergence from ${new Date(divergeAt).toISOString()} (${proxy.altered()} responses altered): first sweep after it ${first?.startedAt ?? '—'} ${first?.verdict ?? '—'}: ${(caught ?? []).slice(0, 4).join(', ')}`,
    )
  }
  console.log(`\n$ overlord-ts cutover status --reports ${reports}\n${status.out}`)
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  await proxy?.close()
  for (const db of Object.values(dbs))
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {})
}
