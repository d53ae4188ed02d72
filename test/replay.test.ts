import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { readCapture } from '../src/capture/reader.ts'
import { replayCapture } from '../src/replay/replay-driver.ts'
import { loadJudge } from '../src/replay/snapshot-compare.ts'
import { VirtualClock } from '../src/replay/virtual-clock.ts'
import { CaptureWriter } from '../src/capture/writer.ts'
import { FleetModel } from '../src/fleet/fleet-model.ts'
import { buildInlineProxy } from '../src/tee/inline-proxy.ts'
import { recordSimulation } from '../src/fleet/record-simulation.ts'
import { DEFAULT_SNAPSHOT_ENDPOINTS } from '../src/capture/snapshots.ts'
import { SECRET, startTracker } from './support/tracker.ts'

const logger = pino({ level: 'silent' })
const START = Date.UTC(2026, 10, 22, 8, 0, 0)

/** Replays a capture into a fresh tracker on its own virtual clock. */
async function replayIntoFresh(path: string, speed?: number) {
  const capture = await readCapture(path)
  const clock = new VirtualClock(capture.events[0]?.t ?? 0)
  const t = await startTracker({ clock, liveCacheMs: 3_600_000 })
  try {
    return await replayCapture({
      capture,
      logger,
      judge: await loadJudge(join(import.meta.dirname, '..', 'compare')),
      speed,
      target: { baseUrl: t.url, secret: SECRET, clock, settle: () => t.tracker.settle() },
    })
  } finally {
    await t.close()
  }
}

describe('record through the inline tee, then replay on virtual time', () => {
  let path: string
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'overlord-replay-'))
    path = join(dir, 'sim.ndjson.gz')
    const clock = new VirtualClock(START)
    const primary = await startTracker({ clock, liveCacheMs: 3_600_000 })
    const capture = new CaptureWriter({ path, source: 'proxy', clock, logger, secrets: [SECRET] })
    const proxy = buildInlineProxy({ primaryUrl: primary.wsUrl, capture, clock, logger })
    const proxyUrl = (await proxy.listen()).replace('http', 'ws')
    try {
      await recordSimulation({
        model: new FleetModel({ seed: 11, characters: 3, startMs: START, sessionMs: [40_000, 60_000] }),
        pluginUrl: `${proxyUrl}/ws/position`,
        pluginSecret: SECRET,
        primary: { baseUrl: primary.url, settle: () => primary.tracker.settle() },
        capture,
        setTime: (ms) => clock.set(ms),
        startMs: START,
        durationMs: 90_000,
        snapshotEveryMs: 30_000,
        endpoints: DEFAULT_SNAPSHOT_ENDPOINTS,
        logger,
      })
    } finally {
      await capture.finish()
      await proxy.close()
      await primary.close()
    }
  })

  it('records every kind of event with receive times, and no secret', async () => {
    const capture = await readCapture(path)
    const kinds = new Set(capture.events.map((e) => e.kind))
    expect([...kinds].sort()).toEqual(['close', 'end', 'frame', 'open', 'snapshot'])
    expect(capture.events.filter((e) => e.kind === 'snapshot')).toHaveLength(3)
    const times = capture.events.map((e) => e.t)
    expect(times.every((t, i) => i === 0 || t >= (times[i - 1] as number))).toBe(true)
    const live = capture.events.find((e) => e.kind === 'snapshot')
    expect(Object.keys((live as { responses: object }).responses)).toContain('/live')
    const { gunzipSync } = await import('node:zlib')
    expect(gunzipSync(await readFile(path)).toString()).not.toContain(SECRET)
  })

  it('replays equal to the recorded primary, and the same twice', async () => {
    const first = await replayIntoFresh(path)
    const failures = first.snapshots.flatMap((s) => s.endpoints.filter((e) => !e.equal))
    expect(failures).toEqual([])
    expect(first.equal).toBe(true)
    expect(first.compared).toBeGreaterThan(20)
    // Paced at 1000x (90 s of capture in ~0.1 s) rather than as fast as possible: the same result.
    const second = await replayIntoFresh(path, 1000)
    expect(second).toEqual(first)
  })

  it('reports a difference when the stream is not what the primary saw', async () => {
    const capture = await readCapture(path)
    const lastSnapshot = capture.events.findLastIndex((e) => e.kind === 'snapshot')
    const i = capture.events.findLastIndex(
      (e, j) => j < lastSnapshot && e.kind === 'frame' && e.data.includes('"telemetry"'),
    )
    const event = capture.events[i] as { data: string }
    const frame = JSON.parse(event.data)
    event.data = JSON.stringify({ ...frame, kills: frame.kills + 1000 })
    const altered = join(await mkdtemp(join(tmpdir(), 'overlord-replay-')), 'altered.ndjson')
    await writeFile(altered, [capture.header, ...capture.events].map((l) => JSON.stringify(l)).join('\n'))
    const result = await replayIntoFresh(altered)
    expect(result.equal).toBe(false)
    const mismatched = result.snapshots.flatMap((s) => s.endpoints.filter((e) => !e.equal).map((e) => e.path))
    expect(mismatched).toContain('/live')
    expect(mismatched).toContain('/total-kills')
  })
})
