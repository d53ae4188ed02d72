import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { request } from 'undici'
import type { CaptureWriter } from '../capture/writer.ts'
import { FleetConnections, type FleetStats } from './fleet-runner.ts'
import type { FleetModel } from './fleet-model.ts'
import { takeSnapshot } from '../capture/snapshots.ts'

/** The primary a simulation is recorded against, running on the same virtual clock as the tee. */
export interface RecordedPrimary {
  /** HTTP base URL of the primary (read endpoints and `/metrics.json`). */
  baseUrl: string
  /** Makes the primary's read endpoints current (Tracker.settle): a snapshot then shows every frame sent. */
  settle(): Promise<void>
}

export interface RecordSimulationOptions {
  model: FleetModel
  /** The plugin endpoint to drive: the inline tee in front of the primary. */
  pluginUrl: string
  pluginSecret: string
  primary: RecordedPrimary
  capture: CaptureWriter
  /** Sets the virtual time shared by the primary and the tee. */
  setTime: (ms: number) => void
  startMs: number
  durationMs: number
  stepMs?: number
  snapshotEveryMs: number
  endpoints: readonly string[]
  logger: Logger
  onProgress?: (simulatedMs: number, stats: FleetStats) => void
}

async function framesReceived(baseUrl: string): Promise<number> {
  const res = await request(new URL('/metrics.json', baseUrl))
  const body = (await res.body.json()) as { frames_received?: number }
  return body.frames_received ?? 0
}

/**
 * Records a deterministic parity case: the fleet plays through the tee into the primary on virtual
 * time, step by step; each step (and each switch between characters) waits until the primary counted
 * every frame sent (`/metrics.json`), so receive times and cross-connection order are exact; at every snapshot instant the primary settles and its read endpoints are
 * recorded into the capture. The same seed and options give the same file.
 */
export async function recordSimulation(o: RecordSimulationOptions): Promise<FleetStats> {
  const connections = new FleetConnections({ url: o.pluginUrl, secret: o.pluginSecret, logger: o.logger })
  const step = o.stepMs ?? 250
  const end = o.startMs + o.durationMs
  let nextSnapshot = o.startMs + o.snapshotEveryMs
  let lastProgress = performance.now()
  const barrier = async (): Promise<void> => {
    await connections.drain()
    while ((await framesReceived(o.primary.baseUrl)) < connections.stats.frames_sent) await sleep(1)
  }
  const snapshot = async (t: number): Promise<void> => {
    await o.primary.settle()
    const responses = await takeSnapshot({
      baseUrl: o.primary.baseUrl,
      endpoints: o.endpoints,
      logger: o.logger,
      // Simulated time, so `{now-3600s}` is the same on every recording.
      at: t,
    })
    o.capture.snapshot(responses, t)
  }
  for (let t = o.startMs; t < end; t += step) {
    o.setTime(t)
    let last: string | undefined
    for (const event of o.model.advance(t)) {
      // Frames of different characters travel on different sockets; fencing at each switch makes the
      // order the primary sees, the order recorded, and so the order replayed, one and the same.
      if (last !== undefined && event.character !== last) await barrier()
      last = event.character
      connections.apply(event)
    }
    await barrier()
    if (t >= nextSnapshot) {
      await snapshot(t)
      nextSnapshot += o.snapshotEveryMs
    }
    if (o.onProgress !== undefined && performance.now() - lastProgress > 1000) {
      lastProgress = performance.now()
      o.onProgress(t - o.startMs, connections.stats)
    }
  }
  o.setTime(end)
  for (const event of o.model.advance(end)) connections.apply(event)
  await connections.closeAll()
  await barrier()
  await snapshot(end)
  return connections.stats
}
