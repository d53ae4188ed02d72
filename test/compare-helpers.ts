import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { request } from 'undici'
import { loadManifest, type Manifest, parseManifest } from '../src/compare/manifest.ts'
import { BackendClient } from '../src/compare/poller.ts'
import type { ReadHistory } from '../src/compare/history.ts'
import { type CompareRules, loadRules, parseRules, readJson, type Waiver } from '../src/compare/rules.ts'
import { runSweep, type SweepEvent, type SweepResult } from '../src/compare/sweep.ts'
import type { TrackerOptions } from '../src/tracker/build-tracker.ts'
import { connectPlugin, type RunningTracker, sendFrames, startTracker, telemetry } from './support/tracker.ts'

export const silent = pino({ level: 'silent' })

/** A primary and a shadow tracker, each on its own database, fed by one plugin socket each. */
export interface Pair {
  primary: RunningTracker
  shadow: RunningTracker
  /** Sends frames to one side or both, waits until received, then settles (writes + /live cache). */
  feed(frames: readonly unknown[], to?: 'both' | 'primary' | 'shadow'): Promise<void>
  close(): Promise<void>
}

export async function startPair(
  shadowOptions: Partial<TrackerOptions> = {},
  common: Partial<TrackerOptions> = {},
): Promise<Pair> {
  const primary = await startTracker(common)
  const shadow = await startTracker({ ...common, ...shadowOptions })
  const pws = await connectPlugin(primary.wsUrl)
  const sws = await connectPlugin(shadow.wsUrl)
  return {
    primary,
    shadow,
    async feed(frames, to = 'both') {
      if (to !== 'shadow') await sendFrames(primary.url, pws, frames)
      if (to !== 'primary') await sendFrames(shadow.url, sws, frames)
      if (to !== 'shadow') await primary.tracker.settle()
      if (to !== 'primary') await shadow.tracker.settle()
    },
    async close() {
      pws.close()
      sws.close()
      await Promise.all([primary.close(), shadow.close()])
    },
  }
}

/** Telemetry for a character with a fixed timestamp, so both sides get byte-identical frames. */
export function frame(character: string, at: Date, fields: Record<string, unknown> = {}) {
  return telemetry(character, { timestamp: at.toISOString(), ...fields })
}

/**
 * A real HTTP proxy in front of one backend that rewrites its JSON responses: the way the
 * integration tests inject divergences a correct tracker would never produce.
 */
export async function startRewritingProxy(
  upstream: string,
  rewrite: (path: string, body: any) => unknown,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    try {
      const up = await request(`${upstream}${req.url}`, { method: 'GET' })
      const text = await up.body.text()
      let out = text
      try {
        out = JSON.stringify(rewrite(req.url ?? '/', JSON.parse(text)))
      } catch {
        out = text
      }
      res.writeHead(up.statusCode, { 'content-type': 'application/json' })
      res.end(out)
    } catch {
      res.writeHead(502)
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export async function projectRules(waivers: Waiver[] = []): Promise<CompareRules> {
  if (waivers.length === 0) return loadRules('compare/rules.json', 'compare/waivers.json')
  return parseRules(await readJson('compare/rules.json'), waivers)
}

export const projectManifest = (): Promise<Manifest> => loadManifest('compare/endpoints.json')

/** A manifest of a few of the project's endpoints. */
export async function manifestOf(...names: string[]): Promise<Manifest> {
  const full = await projectManifest()
  return parseManifest({ ...full, endpoints: full.endpoints.filter((e) => names.includes(e.name)) })
}

/** One sweep of `primaryUrl` against `shadowUrl` with the project's rules. */
export async function sweepOnce(
  primaryUrl: string,
  shadowUrl: string,
  options: {
    rules?: CompareRules
    manifest?: Manifest
    onEvent?: (e: SweepEvent) => void | Promise<void>
    /** Earlier reads, kept across sweeps as `watch` keeps them. */
    history?: ReadHistory
  } = {},
): Promise<SweepResult> {
  const primary = new BackendClient({ side: 'primary', url: primaryUrl, logger: silent })
  const shadow = new BackendClient({ side: 'shadow', url: shadowUrl, logger: silent })
  try {
    return await runSweep({
      primary,
      shadow,
      rules: options.rules ?? (await projectRules()),
      manifest: options.manifest ?? (await projectManifest()),
      logger: silent,
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      ...(options.history === undefined ? {} : { history: options.history }),
    })
  } finally {
    await Promise.all([primary.close(), shadow.close()])
  }
}

export const endpoint = (sweep: SweepResult, name: string) => {
  const e = sweep.endpoints.find((x) => x.name === name)
  if (e === undefined) throw new Error(`no endpoint ${name} in sweep`)
  return e
}

/** The mismatches of a sweep as `endpoint class signature` strings, sorted. */
export const mismatchesOf = (sweep: SweepResult): string[] =>
  sweep.endpoints
    .flatMap((e) =>
      e.examples.filter((d) => d.status === 'mismatch').map((d) => `${e.name} ${d.class} ${d.signature}`),
    )
    .sort()
