/**
 * Mirror lag (not a test): how much later a plugin frame reaches the shadow tracker than it would
 * reach a tracker directly. Everything runs as its own process on a real PostgreSQL: trackers
 * (`serve`), the inline tee (`tee proxy`), the receiver (`tee mirror`) and a Python primary wired
 * with legacy/overlord_tee.py. Plugins send chat frames stamped with their send time; browsers on each
 * tracker's `/ws/live` time their arrival. Usage and figures: bench/README.md.
 *
 *   node bench/tee-mirror-lag.ts [--rate 500] [--duration 10] [--plugins 10]
 */
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { findPython } from '../test/support/python.ts'
import { freePort, NODE, now, percentiles, startChild, startServe, startTeeProxy } from './tee-support.ts'

const { values: a } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    duration: { type: 'string', default: '10' },
    plugins: { type: 'string', default: '10' },
    database: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432' },
  },
})
const SECRET = 'bench-plugin-secret'
const TEE_SECRET = 'bench-tee-secret'
const children: ChildProcess[] = []

const tracker = (db: string): Promise<number> => startServe(`${a.database}/${db}`, SECRET, children)

/** A browser on a tracker's /ws/live recording each chat frame's lag by its `id`. */
async function browser(port: number, lags: Map<string, number>): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/live`)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  ws.send(JSON.stringify({ type: 'subscribe', message_types: ['chat'] }))
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString()) as { id?: string; sent_at?: number }
    if (f.id !== undefined && f.sent_at !== undefined) lags.set(f.id, (now() - f.sent_at) * 1000)
  })
  return ws
}

/** Plugins sending `rate` chat frames/s in total for `duration` s; returns the ids sent. */
async function play(pluginPort: number, tag: string): Promise<string[]> {
  const n = Number(a.plugins)
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${pluginPort}/ws/position`, {
            headers: { 'X-Plugin-Secret': SECRET },
          })
          ws.once('open', () => resolve(ws))
          ws.once('error', reject)
        }),
    ),
  )
  const ids: string[] = []
  const intervalMs = (n * 1000) / Number(a.rate)
  const end = performance.now() + Number(a.duration) * 1000
  let seq = 0
  const timers = sockets.map((ws, i) =>
    setInterval(() => {
      const id = `${tag}-${seq++}`
      ids.push(id)
      ws.send(
        JSON.stringify({ type: 'chat', character_name: `Bench ${i}`, text: 'lag probe', id, sent_at: now() }),
      )
    }, intervalMs),
  )
  while (performance.now() < end) await sleep(50)
  for (const t of timers) clearInterval(t)
  await sleep(2000)
  for (const ws of sockets) ws.close()
  return ids
}

function row(name: string, ids: string[], lags: Map<string, number>): void {
  const got = ids.flatMap((id) => (lags.has(id) ? [lags.get(id) as number] : []))
  const p = percentiles(got)
  console.log(
    `${name.padEnd(40)} ${`${(p.p50 / 1000).toFixed(2)}ms`.padStart(9)} ${`${(p.p99 / 1000).toFixed(2)}ms`.padStart(9)} ${`${got.length}/${ids.length}`.padStart(12)}`,
  )
}

try {
  const shadowPort = await tracker('overlord_bench_tee_shadow')
  const primaryPort = await tracker('overlord_bench_tee_primary')
  const proxyPort = await startTeeProxy(primaryPort, shadowPort, SECRET, children)
  const receiverPort = await freePort()
  children.push(
    await startChild(
      NODE,
      [
        'src/cli/main.ts',
        'tee',
        'mirror',
        '--listen',
        `127.0.0.1:${receiverPort}`,
        '--shadow',
        `ws://127.0.0.1:${shadowPort}/ws/position`,
      ],
      { TEE_SECRET, SHADOW_PLUGIN_SECRET: SECRET },
      receiverPort,
    ),
  )
  const python = spawn(findPython(), ['test/python/mini_primary.py', SECRET], {
    env: {
      ...process.env,
      OVERLORD_TEE_URL: `ws://127.0.0.1:${receiverPort}/tee`,
      OVERLORD_TEE_SECRET: TEE_SECRET,
    },
  })
  children.push(python)
  const firstLine = await createInterface({ input: python.stdout })[Symbol.asyncIterator]().next()
  const pyPort = (JSON.parse(String(firstLine.value)) as { port: number }).port

  const shadowLags = new Map<string, number>()
  const primaryLags = new Map<string, number>()
  const live = [await browser(shadowPort, shadowLags), await browser(primaryPort, primaryLags)]

  console.log(
    `${a.plugins} plugins, ${a.rate} frames/s for ${a.duration}s per row; lag = send → tracker /ws/live`,
  )
  console.log('path                                       lag p50   lag p99     received')
  const direct = await play(shadowPort, 'direct')
  row('plugin → tracker (no tee, baseline)', direct, shadowLags)
  const inline = await play(proxyPort, 'inline')
  row('plugin → tee proxy → primary', inline, primaryLags)
  row('plugin → tee proxy → shadow (mirror)', inline, shadowLags)
  const mirrored = await play(pyPort, 'python')
  row('plugin → Python primary → tee → shadow', mirrored, shadowLags)
  for (const ws of live) ws.close()
} finally {
  for (const c of children) c.kill('SIGTERM')
}
