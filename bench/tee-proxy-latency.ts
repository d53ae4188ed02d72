/**
 * Latency the inline tee adds to the primary path (not a test). A plugin-shaped client does
 * sequential frame→reply round trips against an echoing primary, directly and through `tee proxy`
 * (each its own process), while background plugins load the path; the shadow is absent, up, down,
 * stalled (accepts and never reads) or refusing. Usage and figures: bench/README.md.
 *
 *   node bench/tee-proxy-latency.ts [--frames 5000] [--load 1000]
 *   node bench/tee-proxy-latency.ts --role echo|sink|stall --port N   (the child roles)
 */
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import WebSocket, { WebSocketServer } from 'ws'
import { freePort, NODE, percentiles, startChild } from './tee-support.ts'

const { values: a } = parseArgs({
  options: {
    role: { type: 'string' },
    port: { type: 'string' },
    frames: { type: 'string', default: '5000' },
    load: { type: 'string', default: '1000' },
  },
})
const SECRET = 'bench-plugin-secret'

if (a.role !== undefined) {
  // A child role: the echoing primary or a shadow that reads, never reads, or refuses.
  const server = createServer()
  const wss = new WebSocketServer({ server, perMessageDeflate: false })
  wss.on('connection', (ws, req) => {
    if (a.role === 'refuse') return ws.close(1008, 'invalid plugin secret')
    if (a.role === 'stall') return req.socket.pause()
    ws.on('message', (data, isBinary) => {
      if (a.role === 'echo') ws.send(data, { binary: isBinary })
    })
  })
  server.listen(Number(a.port), '127.0.0.1')
} else {
  const frame = JSON.stringify({
    type: 'telemetry',
    character_name: 'Larsson',
    session_id: 'Larsson-5f2a',
    timestamp: '2026-11-22T08:10:02.120Z',
    ew: 33.61,
    ns: 42.1,
    z: 0.01,
    kills: 1200,
    kills_per_hour: '340.5',
    onlinetime: '01:02:03',
    deaths: '3',
    total_deaths: '57',
    rares_found: 2,
    prismatic_taper_count: '120',
    vt_state: 'Combat',
  })
  const children: ChildProcess[] = []
  const role = async (name: string): Promise<number> => {
    const port = await freePort()
    children.push(
      await startChild(
        NODE,
        ['bench/tee-proxy-latency.ts', '--role', name, '--port', String(port)],
        {},
        port,
      ),
    )
    return port
  }
  const echoPort = await role('echo')
  const shadows: Record<string, string | undefined> = {
    'no shadow': undefined,
    'shadow up': `ws://127.0.0.1:${await role('sink')}/ws/position`,
    'shadow down': `ws://127.0.0.1:${await freePort()}/ws/position`,
    'shadow stalled': `ws://127.0.0.1:${await role('stall')}/ws/position`,
    'shadow refusing': `ws://127.0.0.1:${await role('refuse')}/ws/position`,
  }

  const open = (url: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { 'X-Plugin-Secret': SECRET }, perMessageDeflate: false })
      ws.once('open', () => resolve(ws))
      ws.once('error', reject)
    })

  async function measure(url: string): Promise<ReturnType<typeof percentiles>> {
    // Background plugins: 10 sockets sharing `load` frames/s.
    const background = await Promise.all(Array.from({ length: 10 }, () => open(url)))
    const perSocketMs = (10 * 1000) / Number(a.load)
    const timers = background.map((ws) => setInterval(() => ws.send(frame), perSocketMs))
    const ws = await open(url)
    const rtts: number[] = []
    const total = Number(a.frames)
    for (let i = 0; i < total + 500; i++) {
      const t0 = performance.now()
      const reply = new Promise((resolve) => ws.once('message', resolve))
      ws.send(frame)
      await reply
      if (i >= 500) rtts.push((performance.now() - t0) * 1000)
    }
    for (const t of timers) clearInterval(t)
    for (const s of [...background, ws]) s.close()
    return percentiles(rtts)
  }

  const rows: [string, ReturnType<typeof percentiles>][] = []
  rows.push(['direct (no tee)', await measure(`ws://127.0.0.1:${echoPort}/ws/position`)])
  for (const [name, shadow] of Object.entries(shadows)) {
    const port = await freePort()
    const args = [
      'src/cli/main.ts',
      'tee',
      'proxy',
      '--listen',
      `127.0.0.1:${port}`,
      '--primary',
      `ws://127.0.0.1:${echoPort}`,
    ]
    if (shadow !== undefined) args.push('--shadow', shadow)
    const proxy = await startChild(NODE, args, { SHADOW_PLUGIN_SECRET: SECRET }, port)
    rows.push([`tee proxy, ${name}`, await measure(`ws://127.0.0.1:${port}/ws/position`)])
    proxy.kill('SIGTERM')
  }
  const base = rows[0]?.[1] as ReturnType<typeof percentiles>
  console.log(
    `round trips: ${a.frames} sequential per row, background load ${a.load} frames/s over 10 sockets`,
  )
  console.log('path                          RTT p50    RTT p99   added p50   added p99')
  for (const [name, r] of rows) {
    const added = name.startsWith('direct')
      ? ''
      : `${(r.p50 - base.p50).toFixed(0)}us`.padStart(10) + `${(r.p99 - base.p99).toFixed(0)}us`.padStart(12)
    console.log(
      `${name.padEnd(28)} ${`${r.p50.toFixed(0)}us`.padStart(8)} ${`${r.p99.toFixed(0)}us`.padStart(10)} ${added}`,
    )
  }
  for (const c of children) c.kill()
}
