import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { accountInput } from '../src/compare/accounting.ts'
import { buildInlineProxy } from '../src/tee/inline-proxy.ts'
import { type MirrorCounters, newMirrorCounters, unaccountedFrames } from '../src/tee/mirror-counters.ts'
import { ShadowLink } from '../src/tee/shadow-link.ts'
import { ShadowMirror } from '../src/tee/shadow-mirror.ts'
import { createTestDatabase } from './support/db.ts'
import { connectPlugin, getJson, SECRET, startTracker } from './support/tracker.ts'
import { freePort, waitFor, WsSink } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })

/** Every frame is exactly this long, so bytes in the kernel convert to frames. */
const FRAME_BYTES = 4000
/** On the wire from a client: 2 header bytes, a 16-bit length and a 4-byte mask (RFC 6455 §5.2). */
const WIRE_BYTES = FRAME_BYTES + 2 + 2 + 4

function frameOf(i: number): string {
  const skeleton = JSON.stringify({ type: 'chat', character_name: 'Larsson', text: '', i })
  return JSON.stringify({
    type: 'chat',
    character_name: 'Larsson',
    text: 'x'.repeat(FRAME_BYTES - skeleton.length),
    i,
  })
}

/** The invariant of mirror-counters.ts, spelled out term by term. */
function expectBalanced(c: MirrorCounters): void {
  expect(c.frames_in).toBe(
    c.frames_forwarded +
      c.dropped_overflow +
      c.dropped_slow +
      c.dropped_no_link +
      c.dropped_closed +
      c.dropped_unflushed +
      c.pending,
  )
  expect(unaccountedFrames(c)).toBe(0)
}

/**
 * Bytes written by clients of `port` that its owner has not read yet: the clients' unsent send
 * queues plus the server's unread receive queues (`/proc/net/tcp`, established sockets only).
 */
function bytesInKernelTowards(port: number): number {
  let bytes = 0
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, state, queues] = line.trim().split(/\s+/)
    if (state !== '01' || local === undefined || remote === undefined || queues === undefined) continue
    const [tx, rx] = queues.split(':').map((h) => Number.parseInt(h, 16))
    if (Number.parseInt(remote.split(':')[1] ?? '', 16) === port) bytes += tx ?? 0
    if (Number.parseInt(local.split(':')[1] ?? '', 16) === port) bytes += rx ?? 0
  }
  return bytes
}

/** Whether a child is stopped by a signal (`T` in `/proc/<pid>/stat`); true where there is no procfs. */
function isStopped(child: ChildProcess): boolean {
  const stat = `/proc/${child.pid}/stat`
  if (!existsSync(stat)) return true
  return readFileSync(stat, 'utf8').split(') ')[1]?.startsWith('T') ?? false
}

/** A server that accepts TCP connections and never answers: a shadow stuck in the handshake. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `ws://127.0.0.1:${port}/ws/position`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

describe('ShadowLink: every frame it is given is counted once', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  function link(url: string, o: { maxQueue?: number; maxBufferedBytes?: number } = {}) {
    const counters = newMirrorCounters()
    const l = new ShadowLink({
      url,
      secret: SECRET,
      maxQueue: o.maxQueue ?? 100,
      maxBufferedBytes: o.maxBufferedBytes ?? 1024 * 1024,
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 200,
      counters,
      logger,
    })
    cleanups.push(() => l.terminate())
    // What ShadowMirror.frame does before it hands a frame to the link.
    const hand = (n: number, from = 0): void => {
      for (let i = from; i < from + n; i++) {
        counters.frames_in += 1
        l.send(frameOf(i))
      }
    }
    return { link: l, counters, hand }
  }

  async function sink(
    o: ConstructorParameters<typeof WsSink>[0] = {},
  ): Promise<{ sink: WsSink; url: string }> {
    const s = new WsSink(o)
    const url = `${await s.listen()}/ws/position`
    cleanups.push(() => s.close())
    return { sink: s, url }
  }

  it('close while connecting: queued frames are flushed to a shadow that accepts, then the close', async () => {
    const { sink: shadow, url } = await sink()
    const { link: l, counters, hand } = link(url)
    hand(5)
    expect(counters.pending).toBe(5)
    l.close(1000)
    await waitFor('the close at the shadow', () => shadow.connections[0]?.closeCode === 1000)
    expect(shadow.allFrames()).toHaveLength(5)
    expect(counters).toMatchObject({ frames_in: 5, frames_forwarded: 5, pending: 0 })
    expectBalanced(counters)
  })

  it('close while connecting: queued frames are dropped as closed when the shadow refuses the connection', async () => {
    const { link: l, counters, hand } = link(`ws://127.0.0.1:${await freePort()}/ws/position`)
    hand(5)
    l.close(1000)
    expectBalanced(counters)
    await waitFor('the failed dial to settle the queue', () => counters.pending === 0)
    expect(counters).toMatchObject({ frames_in: 5, frames_forwarded: 0, dropped_closed: 5 })
    expectBalanced(counters)
  })

  it('terminate with a queue: the frames of a shadow stuck in its handshake are dropped as closed', async () => {
    const silent = await silentServer()
    cleanups.push(() => silent.close())
    const { link: l, counters, hand } = link(silent.url, { maxQueue: 8 })
    hand(10)
    expect(counters).toMatchObject({ pending: 8, dropped_overflow: 2 })
    l.terminate()
    expect(counters).toMatchObject({ frames_in: 10, pending: 0, dropped_overflow: 2, dropped_closed: 8 })
    expectBalanced(counters)
  })

  it('terminate with a full send buffer: what the kernel never took is dropped as unflushed, not forwarded', async () => {
    const { sink: shadow, url } = await sink({ stall: true })
    const { link: l, counters, hand } = link(url, { maxBufferedBytes: 1024 * 1024 * 1024 })
    hand(1)
    await waitFor('the shadow socket', () => shadow.connections.length === 1 && counters.pending === 0)
    // About 12 MB towards a shadow that reads nothing: more than loopback's kernel buffers hold.
    for (let i = 1; i < 3001; i += 100) {
      hand(100, i)
      await sleep(5)
    }
    await sleep(200)
    expectBalanced(counters)
    const flushed = counters.frames_forwarded
    const stuck = counters.pending
    expect(stuck).toBeGreaterThan(0)
    l.terminate()
    await waitFor('the failed sends to be counted', () => counters.pending === 0)
    expect(counters).toMatchObject({ frames_in: 3001, frames_forwarded: flushed, dropped_unflushed: stuck })
    expectBalanced(counters)
  })

  it('send after close or terminate is dropped as closed', async () => {
    const { url } = await sink()
    const a = link(url)
    a.hand(3)
    await waitFor('the first frames', () => a.counters.frames_forwarded === 3)
    a.link.close(1000)
    a.hand(2, 3)
    expect(a.counters).toMatchObject({ frames_in: 5, frames_forwarded: 3, dropped_closed: 2, pending: 0 })
    expectBalanced(a.counters)

    const b = link(url)
    b.link.terminate()
    b.hand(4)
    expect(b.counters).toMatchObject({ frames_in: 4, dropped_closed: 4, pending: 0, shadow_connects: 0 })
    expectBalanced(b.counters)
  })

  it('a frame whose link was never created is dropped as no link', async () => {
    const { sink: shadow, url } = await sink()
    const mirror = new ShadowMirror({ url, secret: SECRET, logger, maxLinks: 0 })
    cleanups.push(() => mirror.shutdown())
    mirror.open('c1')
    for (let i = 0; i < 3; i++) mirror.frame('c1', frameOf(i))
    mirror.close('c1', 1000)
    expect(mirror.counters).toMatchObject({ frames_in: 3, dropped_no_link: 3, links: 0 })
    expectBalanced(mirror.counters)
    expect(shadow.connections).toHaveLength(0)
  })
})

describe('tee proxy: frames it does not mirror', () => {
  it('counts a binary plugin frame, relayed to the primary, as not mirrored', async () => {
    const primary = new WsSink()
    const shadow = new WsSink()
    const mirror = new ShadowMirror({ url: `${await shadow.listen()}/ws/position`, secret: SECRET, logger })
    const proxy = buildInlineProxy({
      primaryUrl: await primary.listen(),
      mirror,
      clock: { now: Date.now },
      logger,
    })
    try {
      const plugin = await connectPlugin((await proxy.listen()).replace('http', 'ws'))
      plugin.send(frameOf(0))
      plugin.send(Buffer.from(frameOf(1)))
      plugin.send(frameOf(2))
      await waitFor('every frame at the primary', () => primary.allFrames().length === 3)
      await waitFor('the text frames at the shadow', () => shadow.allFrames().length === 2)
      expect(proxy.counters).toMatchObject({ frames_to_primary: 3, binary_not_mirrored: 1 })
      expect(mirror.counters).toMatchObject({ frames_in: 2, frames_forwarded: 2 })
      expectBalanced(mirror.counters)
      plugin.close(1000)
    } finally {
      await proxy.close()
      mirror.shutdown()
      await shadow.close()
      await primary.close()
    }
  })
})

interface ShadowProcess {
  child: ChildProcess
  url: string
}

/** `overlord-ts serve` as a process of its own, on a clone of the template database. */
async function startShadowProcess(databaseUrl: string): Promise<ShadowProcess> {
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
    env: {
      ...process.env,
      SHARED_SECRET: SECRET,
      DATABASE_URL: databaseUrl,
      SKIP_SCHEMA_INIT: 'true',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const stdout = child.stdout
  if (stdout === null) throw new Error('no stdout')
  for await (const line of createInterface({ input: stdout })) {
    const record = JSON.parse(line) as { msg?: string; url?: string }
    if (record.msg === 'tracker listening' && record.url !== undefined) {
      // Keep draining its log so it never blocks on a full pipe.
      stdout.resume()
      return { child, url: record.url }
    }
  }
  throw new Error('the shadow exited before it listened')
}

describe('tee proxy in front of a shadow that is stopped, then killed', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('accounts for every mirrored frame: forwarded, dropped by reason, or lost in the kernel (was 2 499 unaccounted)', async () => {
    const database = await createTestDatabase()
    cleanups.push(() => database.drop())
    const shadow = await startShadowProcess(database.url)
    cleanups.push(() => {
      if (shadow.child.exitCode === null && shadow.child.signalCode === null) shadow.child.kill('SIGKILL')
    })
    const shadowPort = Number(new URL(shadow.url).port)
    const primary = await startTracker()
    cleanups.push(() => primary.close())
    const mirror = new ShadowMirror({
      url: `${shadow.url.replace('http', 'ws')}/ws/position`,
      secret: SECRET,
      logger,
      maxQueue: 50,
      maxBufferedBytes: 64 * 1024,
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 200,
    })
    cleanups.push(() => mirror.shutdown())
    const proxy = buildInlineProxy({ primaryUrl: primary.wsUrl, mirror, clock: { now: Date.now }, logger })
    const teeUrl = await proxy.listen()
    cleanups.push(() => proxy.close())
    const teeMetrics = async () => (await getJson(`${teeUrl}/metrics`)).body as Record<string, unknown>
    const c = mirror.counters

    const plugin = await connectPlugin(teeUrl.replace('http', 'ws'))
    let sent = 0
    const send = (n: number): void => {
      for (let i = 0; i < n; i++) plugin.send(frameOf(sent++))
    }
    const primaryHasAll = async () =>
      (await getJson(`${primary.url}/metrics.json`)).body.frames_received === sent

    // A healthy shadow gets everything, and says so (once its socket is open: the queue is small).
    send(1)
    await waitFor('the shadow socket to open', () => c.frames_forwarded === 1)
    send(199)
    await waitFor('the shadow to receive every frame', async () => {
      return (await getJson(`${shadow.url}/metrics.json`)).body.frames_received === 200
    })
    const shadowBeforeStop = (await getJson(`${shadow.url}/metrics.json`)).body as Record<string, unknown>
    expect(c).toMatchObject({ frames_in: 200, frames_forwarded: 200, pending: 0 })

    // Stopped: the kernel's buffers fill, then the socket's own buffer passes its bound.
    shadow.child.kill('SIGSTOP')
    await waitFor('the shadow to stop', () => isStopped(shadow.child))
    const started = Date.now()
    while (c.dropped_slow < 200 || Date.now() - started < 1_000) {
      if (Date.now() - started > 20_000) throw new Error(`no slow drops after ${sent} frames`)
      send(50)
      await sleep(20)
    }
    await waitFor('the tee to mirror every frame', () => c.frames_in === sent)
    await waitFor('the primary to receive every frame', primaryHasAll)
    await sleep(300)
    const stopped = { ...c }
    expectBalanced(stopped)
    expect(stopped.pending).toBeGreaterThan(0)
    expect(stopped.dropped_slow).toBeGreaterThan(0)
    const flushedWhileStopped = stopped.frames_forwarded - 200
    if (existsSync('/proc/net/tcp')) {
      // Forwarded means in the kernel: every frame counted since the stop is there, unread, and
      // what is there beyond them belongs to frames still pending (a partly written batch).
      const inKernel = bytesInKernelTowards(shadowPort)
      expect(inKernel).toBeGreaterThanOrEqual(flushedWhileStopped * WIRE_BYTES)
      expect(inKernel).toBeLessThanOrEqual((flushedWhileStopped + stopped.pending) * WIRE_BYTES)
    }

    // Killed: what was still in the socket's buffer was never flushed, and is dropped as such.
    const exited = once(shadow.child, 'exit')
    shadow.child.kill('SIGKILL')
    await exited
    await waitFor('the dead socket to settle its sends', () => c.pending === 0)
    expect(c.frames_forwarded).toBe(stopped.frames_forwarded)
    expect(c.dropped_unflushed).toBe(stopped.pending)
    expectBalanced(c)

    // Gone: frames queue while the tee redials, overflow, and the rest go with the plugin's close.
    send(100)
    await waitFor('the frames after the kill', () => c.frames_in === sent)
    expect(c.dropped_overflow).toBeGreaterThan(0)
    expectBalanced(c)
    plugin.close(1000)
    await waitFor('the queue to be dropped with the close', () => c.pending === 0 && c.dropped_closed > 0)
    await waitFor('the primary to receive every frame after the kill', primaryHasAll)
    expectBalanced(c)
    expect(c).toMatchObject({ frames_in: sent, pending: 0, dropped_no_link: 0 })
    expect(c.dropped_overflow + c.dropped_closed).toBe(100)

    // Accounting: the tee's own drops, plus what it flushed and the shadow never read.
    const accounting = accountInput(await teeMetrics(), shadowBeforeStop)
    expect(accounting).toMatchObject({
      teeIn: sent,
      teePending: 0,
      mirrored: c.frames_forwarded,
      received: 200,
      lostInTransit: flushedWhileStopped,
    })
    expect(accounting.teeDropped).toBe(sent - c.frames_forwarded)
    expect(accounting.lostInTransit).toBeGreaterThan(0)
    expect((accounting.teeDropped ?? 0) + (accounting.received ?? 0) + (accounting.lostInTransit ?? 0)).toBe(
      sent,
    )
  }, 60_000)
})
