import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { createInterface, type Interface } from 'node:readline'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { buildMirrorReceiver, type MirrorReceiver } from '../src/tee/mirror-receiver.ts'
import { ShadowMirror } from '../src/tee/shadow-mirror.ts'
import { findPython } from './support/python.ts'
import { freePort, waitFor, WsSink } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })
const TEE_SECRET = 'tee-secret-123'
const SHADOW_SECRET = 'shadow-plugin-secret'
const python = findPython()

interface Reply {
  stats: { queued: number; sent: number; dropped: number; lost: number; connects: number; pending: number }
  ticks: number
  sent?: number
}

/** The Python tee under test, driven over stdin/stdout. */
class Driver {
  readonly child: ChildProcessWithoutNullStreams
  readonly #lines: Interface
  readonly #replies: Reply[] = []
  #waiters: ((r: Reply) => void)[] = []
  stderr = ''

  constructor(url: string, maxQueue?: number) {
    const args = ['test/python/tee_driver.py', url, TEE_SECRET]
    if (maxQueue !== undefined) args.push(String(maxQueue))
    this.child = spawn(python, args)
    this.child.stderr.on('data', (d) => {
      this.stderr += String(d)
    })
    this.#lines = createInterface({ input: this.child.stdout })
    this.#lines.on('line', (line) => {
      const reply = JSON.parse(line) as Reply
      const waiter = this.#waiters.shift()
      if (waiter === undefined) this.#replies.push(reply)
      else waiter(reply)
    })
  }

  next(): Promise<Reply> {
    const ready = this.#replies.shift()
    if (ready !== undefined) return Promise.resolve(ready)
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  async command(line: string): Promise<Reply> {
    this.child.stdin.write(`${line}\n`)
    return this.next()
  }

  async quit(): Promise<number | null> {
    this.child.stdin.write('quit\n')
    const [code] = await once(this.child, 'exit')
    return code as number | null
  }
}

const seqs = (frames: string[], tag: string): number[] =>
  frames
    .map((f) => JSON.parse(f) as { seq: number; tag: string })
    .filter((f) => f.tag === tag)
    .map((f) => f.seq)

const increasing = (xs: number[]): boolean => xs.every((x, i) => i === 0 || x > (xs[i - 1] as number))

describe('legacy Python tee (python3 + python3-websockets) against the mirror receiver', () => {
  const cleanups: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('survives a receiver down at start and restarted mid-stream; the loop never blocks', async () => {
    const shadow = new WsSink({ secret: SHADOW_SECRET })
    const shadowUrl = await shadow.listen()
    cleanups.push(() => shadow.close())
    const port = await freePort()
    let mirror = new ShadowMirror({ url: `${shadowUrl}/ws/position`, secret: SHADOW_SECRET, logger })
    const startReceiver = async (): Promise<MirrorReceiver> => {
      const r = buildMirrorReceiver({ teeSecret: TEE_SECRET, mirror, logger })
      await r.listen(port)
      return r
    }

    const driver = new Driver(`ws://127.0.0.1:${port}/tee`)
    cleanups.push(async () => driver.child.kill())
    const ready = await driver.next()
    expect(ready.stats.connects).toBe(0)

    // Receiver down: every call returns, frames wait in the bounded queue.
    const a = await driver.command('send 40 a')
    expect(a.sent).toBe(40)
    expect(a.stats.dropped).toBe(0)
    expect(a.stats.connects).toBe(0)

    let receiver = await startReceiver()
    await waitFor('queued frames to reach the shadow', () => seqs(shadow.allFrames(), 'a').length === 40)
    await driver.command('send 60 b')
    await waitFor('phase b at the shadow', () => seqs(shadow.allFrames(), 'b').length === 60)

    // Receiver killed mid-stream: the sender keeps returning at once, the loop keeps ticking.
    await receiver.close()
    mirror.shutdown()
    const before = await driver.command('stats')
    const c = await driver.command('send 200 c')
    expect(c.sent).toBe(200)
    expect(c.ticks).toBeGreaterThanOrEqual(before.ticks)

    mirror = new ShadowMirror({ url: `${shadowUrl}/ws/position`, secret: SHADOW_SECRET, logger })
    receiver = await startReceiver()
    cleanups.push(async () => {
      await receiver.close()
      mirror.shutdown()
    })
    await waitFor('the tee to reconnect', async () => (await driver.command('stats')).stats.connects >= 2)
    await driver.command('send 60 d')
    await waitFor('phase d at the shadow', () => seqs(shadow.allFrames(), 'd').length === 60)
    await driver.command('close')
    await waitFor('mirrored disconnects', () => receiver.counters.plugin_closes >= 2)

    // Per character, the shadow saw frames in order on sockets authenticated with the shadow's secret.
    for (const conn of shadow.connections) {
      expect(conn.headers['x-plugin-secret']).toBe(SHADOW_SECRET)
      const all = conn.frames.map((f) => (JSON.parse(f) as { seq: number }).seq)
      expect(increasing(all)).toBe(true)
      const names = new Set(
        conn.frames.map((f) => (JSON.parse(f) as { character_name: string }).character_name),
      )
      expect(names.size).toBeLessThanOrEqual(1)
    }
    const after = await driver.command('stats')
    expect(after.ticks).toBeGreaterThan(c.ticks)
    expect(await driver.quit()).toBe(0)
  })

  it('never blocks on a receiver that accepts TCP and never answers; the queue stays bounded', async () => {
    const held: Socket[] = []
    const blackHole = createServer((s) => {
      held.push(s)
      s.on('error', () => {})
    })
    blackHole.listen(0, '127.0.0.1')
    await once(blackHole, 'listening')
    cleanups.push(async () => {
      for (const s of held) s.destroy()
      await new Promise((resolve) => blackHole.close(resolve))
    })
    const port = (blackHole.address() as { port: number }).port
    const driver = new Driver(`ws://127.0.0.1:${port}/tee`, 500)
    cleanups.push(async () => driver.child.kill())
    const ready = await driver.next()
    const r = await driver.command('send 5000 x')
    expect(r.sent).toBe(5000)
    // Two opens and 5000 frames against a queue of 500: the excess is dropped and counted.
    expect(r.stats.pending).toBeLessThanOrEqual(500)
    expect(r.stats.dropped).toBe(5002 - 500)
    expect(r.stats.sent).toBe(0)
    const later = await driver.command('stats')
    expect(later.ticks).toBeGreaterThan(ready.ticks)
    expect(await driver.quit()).toBe(0)
    expect(driver.stderr).not.toMatch(/Traceback/)
  })
})

describe('legacy Python tee: off unless enabled', () => {
  it('tee_from_env gives a no-op NullTee without OVERLORD_TEE_URL, a Tee with it', async () => {
    const script = [
      'import sys, json, asyncio',
      "sys.path.insert(0, 'legacy')",
      'from overlord_tee import tee_from_env',
      'async def main():',
      '    off = tee_from_env({})',
      '    off.start(); c = off.open(); off.frame(c, "x"); off.close(c); await off.stop()',
      "    on = tee_from_env({'OVERLORD_TEE_URL': 'ws://127.0.0.1:9/tee', 'OVERLORD_TEE_QUEUE': '3'})",
      '    c = on.open()',
      '    for _ in range(5): on.frame(c, "x")',
      '    on.close(c, None)',
      "    print(json.dumps({'off': off.enabled, 'on': on.enabled, 'stats': on.stats()}))",
      '    await on.stop()',
      'asyncio.run(main())',
    ].join('\n')
    const child = spawn(python, ['-c', script])
    let out = ''
    child.stdout.on('data', (d) => {
      out += String(d)
    })
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
    const r = JSON.parse(out) as { off: boolean; on: boolean; stats: { queued: number; dropped: number } }
    expect(r.off).toBe(false)
    expect(r.on).toBe(true)
    // Hooks called before start() still queue, bounded: 1 open + 5 frames + 1 close against a queue of 3.
    expect(r.stats).toMatchObject({ queued: 3, dropped: 4 })
  })
})
