/**
 * Browser-side load for bench/scale-out.ts, one worker thread of several. Each browser is a raw
 * `net` socket: the WebSocket handshake is written by hand and server frames are parsed straight
 * off the byte stream into one reused read buffer, so the receiver costs as little as it can and
 * the tracker, not the receiver, is what gets measured. Per message it reads the `"t":<ms>` at the
 * payload's tail into a latency histogram (0.1 ms buckets, like bench/browsers-worker.ts).
 *
 * Messages from the parent: 'start' (zero the counters, start the event-loop clock), 'stop'
 * (counts of the measured window), 'report' (totals since 'start' and the histogram), 'close'.
 */
import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'

const { ports, trackerPorts } = workerData as { ports: number[]; trackerPorts: number[] }
const now = () => performance.timeOrigin + performance.now()
const BUCKET_MS = 0.1
const histogram = new Uint32Array(100_000)
/**
 * With several ports (one instance each), the same latencies split by path: frames whose plugin
 * is on the browser's own instance, and frames that came to it over the bus. Plugin `p`
 * ("Bench p") is on `trackerPorts[p % trackerPorts.length]`.
 */
const split = trackerPorts.length > 1
/** The same latencies from the third second of load on, past the tracker's start-up (JIT, first rows). */
const WARM_MS = 2_000
const warmHistogram = new Uint32Array(histogram.length)
const localHistogram = new Uint32Array(split ? histogram.length : 0)
const busHistogram = new Uint32Array(split ? histogram.length : 0)
const PREFIX = Buffer.from('{"character_name":"Bench ')
/** The worst latency seen in each second since 'start', to tell a start-up hiccup from a steady tail. */
const maxBySecond: number[] = []
let startedAt = 0
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** Sockets opened at once while connecting: a burst of 200 SYNs overflows the listen backlog. */
const OPEN_CONCURRENCY = 20
/** A pong with an all-zero mask: client frames must be masked, and a zero mask leaves the bytes as they are. */
const EMPTY_PONG = Buffer.from([0x8a, 0x80, 0, 0, 0, 0])

let messages = 0
let measuring = false
let stopping = false
let closedByServer = 0
const closeCodes: Record<string, number> = {}

/** One reused buffer for every read of every socket in this thread: reads are handled synchronously. */
const readBuffer = Buffer.allocUnsafe(256 * 1024)

interface Browser {
  socket: net.Socket
  port: number
  key: string
  /** The handshake response so far, until its blank line. */
  head: string
  open: boolean
  /** An incomplete frame carried over to the next read: `pend[0..pendLen)`. */
  pend: Buffer
  pendLen: number
  closeCode: number | undefined
}

/** Bytes of the header of a frame starting `b0 b1`: 2, 4 or 10, plus 4 with a mask. */
const headerLength = (b1: number): number => {
  const len7 = b1 & 0x7f
  return (len7 === 126 ? 4 : len7 === 127 ? 10 : 2) + (b1 & 0x80 ? 4 : 0)
}

/** The whole frame's length, header included, from a complete header at `buf[off]`. */
const frameLength = (buf: Buffer, off: number): number => {
  const b1 = buf[off + 1]!
  const len7 = b1 & 0x7f
  const len =
    len7 === 126
      ? buf.readUInt16BE(off + 2)
      : len7 === 127
        ? buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6)
        : len7
  return headerLength(b1) + len
}

/**
 * The number after the last `"t":` of `buf[start..end)`, read backwards from the closing brace
 * without making a string; NaN when the payload does not end that way.
 */
function tailTime(buf: Buffer, start: number, end: number): number {
  const i = end - 1
  if (i < start || buf[i] !== 0x7d) return Number.NaN // }
  let j = i - 1
  while (j >= start && ((buf[j]! >= 0x30 && buf[j]! <= 0x39) || buf[j] === 0x2e)) j--
  // buf[j] must be the ':' of "t":
  if (j - 3 < start || buf[j] !== 0x3a || buf[j - 1] !== 0x22 || buf[j - 2] !== 0x74 || buf[j - 3] !== 0x22)
    return Number.NaN
  let value = 0
  let scale = 0
  for (let k = j + 1; k < i; k++) {
    const c = buf[k]!
    if (c === 0x2e) scale = 1
    else {
      value = value * 10 + (c - 0x30)
      if (scale > 0) scale *= 10
    }
  }
  return scale > 0 ? value / scale : value
}

/** The `p` of a payload starting `{"character_name":"Bench p"`, or -1. */
function pluginOf(buf: Buffer, start: number): number {
  if (buf.compare(PREFIX, 0, PREFIX.length, start, start + PREFIX.length) !== 0) return -1
  let p = 0
  for (let k = start + PREFIX.length; k < buf.length; k++) {
    const c = buf[k]!
    if (c < 0x30 || c > 0x39) return c === 0x22 ? p : -1
    p = p * 10 + (c - 0x30)
  }
  return -1
}

/** Handles one complete frame at `buf[off..off+total)`; `arrived` is when its read came in. */
function onFrame(b: Browser, buf: Buffer, off: number, total: number, arrived: number): void {
  const b0 = buf[off]!
  const opcode = b0 & 0x0f
  const payload = off + headerLength(buf[off + 1]!)
  if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
    if ((b0 & 0x80) === 0) return // a fragment: the message ends with its FIN frame
    if (!measuring) return
    messages += 1
    const t = tailTime(buf, payload, off + total)
    if (!Number.isNaN(t)) {
      const ms = arrived - t
      const bucket = Math.min(histogram.length - 1, Math.max(0, Math.floor(ms / BUCKET_MS)))
      histogram[bucket]! += 1
      if (arrived - startedAt >= WARM_MS) warmHistogram[bucket]! += 1
      const second = Math.floor((arrived - startedAt) / 1000)
      if (!(maxBySecond[second]! >= ms)) maxBySecond[second] = ms
      if (split) {
        const p = pluginOf(buf, payload)
        if (p >= 0)
          (trackerPorts[p % trackerPorts.length] === b.port ? localHistogram : busHistogram)[bucket]! += 1
      }
    }
  } else if (opcode === 0x8) {
    b.closeCode = off + total - payload >= 2 ? buf.readUInt16BE(payload) : 1005
    b.socket.destroy()
  } else if (opcode === 0x9) {
    // Pings here carry no payload worth echoing: an empty pong keeps the connection alive.
    b.socket.write(EMPTY_PONG)
  }
}

/** Parses `buf[off..end)` of one read: complete frames are handled, a partial one is kept. */
function onBytes(b: Browser, buf: Buffer, off: number, end: number): void {
  const arrived = now()
  // First finish the frame left over from the previous read, if any.
  if (b.pendLen > 0) {
    for (;;) {
      const have = b.pendLen
      const need = have < 2 ? 2 : headerLength(b.pend[1]!)
      if (have >= need) break
      const n = Math.min(need - have, end - off)
      buf.copy(b.pend, have, off, off + n)
      b.pendLen += n
      off += n
      if (off >= end && b.pendLen < need) return
    }
    const total = frameLength(b.pend, 0)
    if (b.pend.length < total) {
      const bigger = Buffer.allocUnsafe(Math.max(total, b.pend.length * 2))
      b.pend.copy(bigger, 0, 0, b.pendLen)
      b.pend = bigger
    }
    const n = Math.min(total - b.pendLen, end - off)
    buf.copy(b.pend, b.pendLen, off, off + n)
    b.pendLen += n
    off += n
    if (b.pendLen < total) return
    b.pendLen = 0
    onFrame(b, b.pend, 0, total, arrived)
  }
  while (off < end) {
    if (end - off < 2 || end - off < headerLength(buf[off + 1]!)) break
    const total = frameLength(buf, off)
    if (end - off < total) break
    onFrame(b, buf, off, total, arrived)
    off += total
  }
  const rest = end - off
  if (rest > 0) {
    if (b.pend.length < rest) b.pend = Buffer.allocUnsafe(Math.max(rest, b.pend.length * 2))
    buf.copy(b.pend, 0, off, end)
    b.pendLen = rest
  }
}

const browsers: Browser[] = []

function openBrowser(port: number): Promise<Browser> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64')
    const b: Browser = {
      socket: undefined as unknown as net.Socket,
      port,
      key,
      head: '',
      open: false,
      pend: Buffer.allocUnsafe(4096),
      pendLen: 0,
      closeCode: undefined,
    }
    const expectAccept = createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64')
    b.socket = net.connect({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: readBuffer,
        callback: (nread: number, buf: Uint8Array): boolean => {
          const data = buf as Buffer
          if (b.open) {
            onBytes(b, data, 0, nread)
            return true
          }
          b.head += data.toString('latin1', 0, nread)
          const blank = b.head.indexOf('\r\n\r\n')
          if (blank < 0) return true
          const status = b.head.slice(0, b.head.indexOf('\r\n'))
          if (!/^HTTP\/1\.1 101 /.test(status) || !b.head.includes(expectAccept)) {
            b.socket.destroy()
            reject(new Error(`handshake on port ${port} refused: ${status}`))
            return false
          }
          b.open = true
          // Frames that came in the same read as the response.
          const bodyStart = nread - (b.head.length - blank - 4)
          b.head = ''
          resolve(b)
          if (bodyStart < nread) onBytes(b, data, bodyStart, nread)
          return true
        },
      },
    })
    b.socket.on('connect', () => {
      b.socket.write(
        `GET /ws/live HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      )
    })
    b.socket.on('error', (err) => {
      if (!b.open) reject(err)
    })
    b.socket.on('close', () => {
      if (!b.open) reject(new Error(`browser socket on port ${port} closed during the handshake`))
      else if (!stopping) {
        closedByServer += 1
        const code = String(b.closeCode ?? 'no close frame')
        closeCodes[code] = (closeCodes[code] ?? 0) + 1
      }
    })
  })
}

let next = 0
await Promise.all(
  Array.from({ length: OPEN_CONCURRENCY }, async () => {
    while (next < ports.length) {
      const port = ports[next++]!
      browsers.push(await openBrowser(port))
    }
  }),
)

let eluStart = performance.eventLoopUtilization()
let windowCounts = { messages: 0, utilization: 0 }
parentPort!.postMessage({ ready: true, opened: browsers.length })
parentPort!.on('message', (msg: string) => {
  if (msg === 'start') {
    messages = 0
    histogram.fill(0)
    warmHistogram.fill(0)
    localHistogram.fill(0)
    busHistogram.fill(0)
    maxBySecond.length = 0
    startedAt = now()
    closedByServer = 0
    for (const k of Object.keys(closeCodes)) delete closeCodes[k]
    measuring = true
    eluStart = performance.eventLoopUtilization()
  } else if (msg === 'stop') {
    windowCounts = { messages, utilization: performance.eventLoopUtilization(eluStart).utilization }
    parentPort!.postMessage(windowCounts)
  } else if (msg === 'report') {
    const perPort: Record<number, number> = {}
    for (const b of browsers) if (!b.socket.destroyed) perPort[b.port] = (perPort[b.port] ?? 0) + 1
    parentPort!.postMessage({
      ...windowCounts,
      messagesAfterDrain: messages,
      histogram,
      warmHistogram,
      localHistogram: split ? localHistogram : null,
      busHistogram: split ? busHistogram : null,
      maxBySecond: Array.from(maxBySecond, (x) => x ?? 0),
      bucketMs: BUCKET_MS,
      closedByServer,
      closeCodes,
      stillOpenByPort: perPort,
    })
  } else if (msg === 'close') {
    stopping = true
    measuring = false
    for (const b of browsers) b.socket.destroy()
    parentPort!.close()
  }
})
