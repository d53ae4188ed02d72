import { EventEmitter } from 'node:events'
import { Duplex } from 'node:stream'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { BrowserHub, CLOSE_SLOW_CONSUMER, framed } from './browser-hub.ts'
import { FaultLog } from './fault-log.ts'
import { counterRecord } from './metrics.ts'

/**
 * A connection whose writes complete only when `release()` says so, as a socket to a reader
 * that stopped reading; `writes` records each write the hub made (one entry per writev).
 */
class StallingSocket extends Duplex {
  readonly writes: Buffer[][] = []
  #held: (() => void)[] = []

  constructor() {
    super({ highWaterMark: 16 * 1024 })
  }

  override _read(): void {}

  override _writev(chunks: { chunk: Buffer }[], done: () => void): void {
    this.writes.push(chunks.map((c) => c.chunk))
    this.#held.push(done)
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this._writev([{ chunk }], done)
  }

  /** Completes every write so far, as a reader catching up does. */
  release(): void {
    const held = this.#held
    this.#held = []
    for (const done of held) done()
  }
}

/** The part of a ws WebSocket the hub uses. */
class FakeWs extends EventEmitter {
  readyState: number = 1
  closedWith: number | undefined
  readonly socket: StallingSocket
  constructor(socket: StallingSocket) {
    super()
    this.socket = socket
  }
  get bufferedAmount(): number {
    return this.socket.writableLength
  }
  close(code: number): void {
    this.closedWith = code
    this.readyState = 2
  }
}

const flushed = () => new Promise((r) => setImmediate(r))

function setUp(limits: { soft: number; hard: number; lowWater: number }) {
  const faultCounts = counterRecord()
  const logger = pino({ level: 'silent' })
  const hub = new BrowserHub({
    logger,
    faults: new FaultLog(faultCounts, logger),
    softLimitBytes: limits.soft,
    hardLimitBytes: limits.hard,
    lowWaterBytes: limits.lowWater,
    graceMs: 60_000,
    coalesceMs: 0,
  })
  const socket = new StallingSocket()
  const ws = new FakeWs(socket)
  const client = hub.add(ws as unknown as WebSocket, socket)
  return { hub, socket, ws, client, faultCounts }
}

const payload = (i: number, size = 1000) => Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(size) }))

describe('BrowserHub', () => {
  it('writes one flush of frames under one cork: a single writev of the shared framed bytes', async () => {
    const { hub, socket } = setUp({ soft: 1 << 20, hard: 8 << 20, lowWater: 64 * 1024 })
    const frames = [0, 1, 2, 3, 4].map((i) => payload(i, 100))
    for (const p of frames) hub.broadcast('chat', p)
    await flushed()
    expect(socket.writes).toHaveLength(1)
    expect(socket.writes[0]).toEqual(frames.map(framed))
    expect(hub.stats.messagesSent).toBe(5)
  })

  it("answers a browser's request after the frames broadcast before it, whatever its new subscribe says", async () => {
    const { hub, socket, client } = setUp({ soft: 1 << 20, hard: 8 << 20, lowWater: 64 * 1024 })
    const answer = { type: 'dungeon_map', landblock: '0x1', error: 'not_found' }
    hub.broadcast('vitals', payload(1, 10))
    hub.subscribe(client, ['rare'])
    hub.reply(client, answer)
    hub.broadcast('vitals', payload(2, 10))
    await flushed()
    expect(socket.writes.flat()).toEqual([
      framed(payload(1, 10)),
      framed(Buffer.from(JSON.stringify(answer))),
    ])
  })

  it('keeps a stalled browser backlog in its queue, not its socket, and resumes on drain', async () => {
    const { hub, socket, ws } = setUp({ soft: 1 << 20, hard: 8 << 20, lowWater: 32 * 1024 })
    const total = 200 // ~200 KB against a 32 KiB low-water mark
    for (let i = 0; i < total; i++) hub.broadcast('chat', payload(i))
    await flushed()
    const frameBytes = framed(payload(0)).length
    expect(socket.writableLength).toBeLessThan(32 * 1024 + frameBytes)
    expect(hub.stats.messagesSent).toBeLessThan(total)
    // More broadcasts while stalled stay queued too.
    for (let i = total; i < 2 * total; i++) hub.broadcast('chat', payload(i))
    await flushed()
    expect(socket.writableLength).toBeLessThan(32 * 1024 + frameBytes)
    // The reader catches up: each 'drain' hands over the next low-water mark's worth, in order.
    while (hub.stats.messagesSent < 2 * total) {
      socket.release()
      await flushed()
    }
    socket.release()
    // Each frame: a 4-byte header (RFC 6455 §5.2, 16-bit length), then the payload.
    const seen = socket.writes.flat().map((b) => JSON.parse(b.subarray(4).toString()).i)
    expect(seen).toEqual([...Array(2 * total).keys()])
    expect(ws.closedWith).toBeUndefined()
  })

  it('cuts off a browser past the hard limit with 1013, behind at most the low-water mark, and drops its queue', async () => {
    const { hub, socket, ws } = setUp({ soft: 64 * 1024, hard: 256 * 1024, lowWater: 32 * 1024 })
    for (let i = 0; i < 1_000; i++) hub.broadcast('chat', payload(i)) // ~1 MB
    await flushed()
    expect(ws.closedWith).toBe(CLOSE_SLOW_CONSUMER)
    expect(hub.size).toBe(0)
    expect(hub.stats.slowDisconnects).toBe(1)
    const written = socket.writes.flat().length
    expect(socket.writableLength).toBeLessThan(32 * 1024 + framed(payload(0)).length)
    // Nothing more reaches the socket: not new broadcasts, not the discarded queue on 'drain'.
    for (let i = 0; i < 10; i++) hub.broadcast('chat', payload(i))
    socket.release()
    await flushed()
    expect(socket.writes.flat().length).toBe(written)
  })

  it('contains a browser whose socket throws on write: counted, cut off, the others still served', async () => {
    const { hub, socket: good, faultCounts } = setUp({ soft: 1 << 20, hard: 8 << 20, lowWater: 64 * 1024 })
    const broken = new StallingSocket()
    broken.write = () => {
      throw new Error('write after end')
    }
    const brokenWs = new FakeWs(broken)
    let terminated = false
    Object.assign(brokenWs, { terminate: () => (terminated = true) })
    hub.add(brokenWs as unknown as WebSocket, broken)
    hub.broadcast('chat', payload(1, 10))
    await flushed()
    expect({ ...faultCounts }).toEqual({ fanout: 1 })
    expect(terminated).toBe(true)
    expect(hub.size).toBe(1)
    hub.broadcast('chat', payload(2, 10))
    await flushed()
    good.release()
    expect(good.writes.flat()).toHaveLength(2)
  })
})
