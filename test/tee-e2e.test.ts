import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { readAccounting } from '../src/compare/accounting.ts'
import { BackendClient } from '../src/compare/poller.ts'
import { FleetConnections } from '../src/fleet/fleet-runner.ts'
import { FleetModel } from '../src/fleet/fleet-model.ts'
import { buildInlineProxy } from '../src/tee/inline-proxy.ts'
import { buildMirrorReceiver } from '../src/tee/mirror-receiver.ts'
import { ShadowMirror } from '../src/tee/shadow-mirror.ts'
import { findPython } from './support/python.ts'
import { getJson, SECRET, startTracker } from './support/tracker.ts'
import { waitFor } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })
const TEE_SECRET = 'receiver-secret-xyz'
const START = Date.UTC(2026, 10, 22, 8, 0, 0)

/** Plays a fleet for `ms` of simulated time in one go against a plugin URL. */
async function playFleet(url: string, ms: number, seed = 5): Promise<FleetConnections> {
  const fleet = new FleetConnections({ url, secret: SECRET, logger })
  const model = new FleetModel({ seed, characters: 3, startMs: START })
  for (const event of model.advance(START + ms)) fleet.apply(event)
  await fleet.drain()
  return fleet
}

const metrics = async (base: string) => (await getJson(`${base}/metrics.json`)).body
const liveNames = async (base: string): Promise<string[]> =>
  (await getJson(`${base}/live`)).body.players.map((p: { character_name: string }) => p.character_name)

describe('a plugin frame sent to the primary reaches the shadow tracker', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('inline mode: through the tee proxy, and the primary is untouched when the shadow dies', async () => {
    const primary = await startTracker()
    const shadow = await startTracker({ liveCacheMs: 3_600_000 })
    cleanups.push(() => primary.close())
    let shadowAlive = true
    cleanups.push(() => (shadowAlive ? shadow.close() : undefined))
    const mirror = new ShadowMirror({ url: `${shadow.wsUrl}/ws/position`, secret: SECRET, logger })
    cleanups.push(() => mirror.shutdown())
    const proxy = buildInlineProxy({ primaryUrl: primary.wsUrl, mirror, clock: { now: Date.now }, logger })
    const proxyUrl = (await proxy.listen()).replace('http', 'ws')
    cleanups.push(() => proxy.close())

    const fleet = await playFleet(`${proxyUrl}/ws/position`, 20_000)
    const sent = fleet.stats.frames_sent
    expect(sent).toBeGreaterThan(30)
    await waitFor(
      'the primary to count every frame',
      async () => (await metrics(primary.url)).frames_received === sent,
    )
    await waitFor(
      'the shadow to count every frame',
      async () => (await metrics(shadow.url)).frames_received === sent,
    )
    const [p, s] = [await metrics(primary.url), await metrics(shadow.url)]
    expect(s.by_type).toEqual(p.by_type)
    // The comparison engine's input accounting reads the same story from the tee's counters.
    const accounting = await readAccounting({
      primary: new BackendClient({ side: 'primary', url: primary.url, logger }),
      shadow: new BackendClient({ side: 'shadow', url: shadow.url, logger }),
      teeMetricsUrl: `${proxyUrl.replace('ws', 'http')}/metrics`,
    })
    expect(accounting).toMatchObject({
      teeIn: sent,
      teeDropped: 0,
      teePending: 0,
      mirrored: sent,
      received: sent,
      lostInTransit: 0,
      notApplied: 0,
    })
    await shadow.tracker.settle()
    await primary.tracker.settle()
    expect(await liveNames(shadow.url)).toEqual(await liveNames(primary.url))
    expect((await liveNames(primary.url)).length).toBe(3)

    // The shadow dies mid-stream: the primary still gets everything.
    await shadow.close()
    shadowAlive = false
    const more = await playFleet(`${proxyUrl}/ws/position`, 20_000, 6)
    const total = sent + more.stats.frames_sent
    await waitFor(
      'the primary to count the frames sent after the shadow died',
      async () => (await metrics(primary.url)).frames_received === total,
    )
    expect((await metrics(primary.url)).frames_bad).toBe(0)
    await fleet.closeAll()
    await more.closeAll()
  })

  it('mirror mode: a Python primary wired as legacy/README.md says, through the receiver', async () => {
    const shadow = await startTracker({ liveCacheMs: 3_600_000 })
    cleanups.push(() => shadow.close())
    const mirror = new ShadowMirror({ url: `${shadow.wsUrl}/ws/position`, secret: SECRET, logger })
    cleanups.push(() => mirror.shutdown())
    const receiver = buildMirrorReceiver({ teeSecret: TEE_SECRET, mirror, logger })
    const receiverUrl = (await receiver.listen()).replace('http', 'ws')
    cleanups.push(() => receiver.close())

    const child = spawn(findPython(), ['test/python/mini_primary.py', SECRET], {
      env: { ...process.env, OVERLORD_TEE_URL: `${receiverUrl}/tee`, OVERLORD_TEE_SECRET: TEE_SECRET },
    })
    cleanups.push(() => child.kill())
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
    const { port } = JSON.parse((await lines.next()).value as string) as { port: number }

    const fleet = await playFleet(`ws://127.0.0.1:${port}/ws/position`, 20_000)
    const sent = fleet.stats.frames_sent
    await waitFor(
      'the shadow to count every mirrored frame',
      async () => (await metrics(shadow.url)).frames_received === sent,
    )
    await fleet.closeAll()
    await waitFor(
      'mirrored disconnects',
      () => receiver.counters.plugin_closes === receiver.counters.plugin_opens,
    )
    await shadow.tracker.settle()
    expect((await liveNames(shadow.url)).length).toBe(3)

    child.stdin.write('quit\n')
    const summary = JSON.parse((await lines.next()).value as string) as {
      frames: number
      tee: { dropped: number; sent: number }
    }
    expect(summary.frames).toBe(sent)
    expect(summary.tee.dropped).toBe(0)
    await once(child, 'exit')
  })
})
