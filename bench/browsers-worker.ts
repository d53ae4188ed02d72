/**
 * Browser-side load for bench/ingest.ts, in its own thread so receiving never competes with
 * sending on one event loop. Reports a histogram of per-frame ingest→browser latency from the `t` each frame carries.
 */
import { once } from 'node:events'
import { parentPort, workerData } from 'node:worker_threads'
import WebSocket from 'ws'

const { port, firehose, filtered, stalled } = workerData as {
  port: number
  firehose: number
  filtered: number
  stalled: number
}
const now = () => performance.timeOrigin + performance.now()
// A histogram in 0.1 ms buckets up to 10 s: storing millions of samples would itself cause GC pauses.
const BUCKET_MS = 0.1
const histogram = new Uint32Array(100_000)
const record = (ms: number) => {
  histogram[Math.min(histogram.length - 1, Math.max(0, Math.floor(ms / BUCKET_MS)))]! += 1
}
let messages = 0
const sockets: WebSocket[] = []

async function open(kind: 'firehose' | 'filtered' | 'stalled'): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/live`)
  ws.on('error', () => {})
  await once(ws, 'open')
  if (kind === 'filtered') ws.send(JSON.stringify({ type: 'subscribe', message_types: ['rare', 'chat'] }))
  if (kind === 'stalled') {
    ws.pause()
  } else {
    ws.on('message', (data: Buffer) => {
      messages += 1
      // Frames end with ,"t":<ms>} — read the tail instead of parsing the whole message.
      const tail = data.toString('latin1', Math.max(0, data.length - 32))
      const i = tail.lastIndexOf('"t":')
      if (i >= 0) record(now() - Number(tail.slice(i + 4, -1)))
    })
  }
  sockets.push(ws)
}

for (let i = 0; i < firehose; i++) await open('firehose')
for (let i = 0; i < filtered; i++) await open('filtered')
for (let i = 0; i < stalled; i++) await open('stalled')
const eluStart = performance.eventLoopUtilization()
parentPort!.postMessage({ ready: true })
parentPort!.on('message', (msg: string) => {
  if (msg === 'report') {
    parentPort!.postMessage({
      messages,
      histogram,
      bucketMs: BUCKET_MS,
      utilization: performance.eventLoopUtilization(eluStart).utilization,
    })
    for (const ws of sockets) ws.terminate()
  }
})
