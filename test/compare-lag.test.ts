import { describe, expect, it } from 'vitest'
import { ReadHistory } from '../src/compare/history.ts'
import type { SweepResult } from '../src/compare/sweep.ts'
import {
  mismatchesOf,
  projectRules,
  type Pair,
  startPair,
  startRewritingProxy,
  sweepOnce,
} from './compare-helpers.ts'
import { connectPlugin, sendFrames, telemetry } from './support/tracker.ts'

/**
 * Issue 9 §1 on real trackers: a shadow that has processed the same frames, later, and whose
 * `/live` cache refreshes on another phase, must compare clean on every endpoint of the catalog;
 * a shadow that serves a wrong value for the same frame must not. The timeline is simulated (no
 * waiting): a frame every 2 s per character, each cache refreshed every 5 s on its own phase, a
 * sweep every 10 s with the read history `watch` keeps.
 */

const CHARACTERS = ['Aerfalle', 'Bael Zharon', 'Cragstone Knight', 'Dericost Blade', 'Elysa', 'Fenmalain']
const FRAME_S = 2
const CACHE_S = 5
const STEP_S = 0.5

interface Scenario {
  /** Frames the shadow trails by. */
  lagFrames: number
  /** Seconds between the two caches' refreshes. */
  phaseS: number
  /** Sweeps to run (one every 10 s, after 20 s of traffic). */
  sweeps: number
  /** The shadow as the engine sees it (a rewriting proxy, or the tracker itself). */
  shadowUrl?: (pair: Pair) => Promise<{ url: string; close(): Promise<void> }>
}

async function runScenario(s: Scenario): Promise<SweepResult[]> {
  const pair = await startPair({ liveCacheMs: 24 * 3_600_000 }, { liveCacheMs: 24 * 3_600_000 })
  const front = s.shadowUrl === undefined ? undefined : await s.shadowUrl(pair)
  const primaryWs = await connectPlugin(pair.primary.wsUrl)
  const shadowWs = await connectPlugin(pair.shadow.wsUrl)
  // Frame timestamps end near now: /live's 30 s window counts from the receive time anyway.
  const t0 = Date.now() - (20 + s.sweeps * 10) * 1000
  const frameAt = (c: number, n: number) => {
    const t = n * FRAME_S + c * 0.25
    return telemetry(CHARACTERS[c]!, {
      timestamp: new Date(t0 + t * 1000).toISOString(),
      kills: n,
      ew: 10 + n * 0.0137 + c,
      ns: -20 - n * 0.0071,
      onlinetime: `00:${String(Math.floor(n / 30)).padStart(2, '0')}:${String((n * 2) % 60).padStart(2, '0')}`,
    })
  }
  const history = new ReadHistory({ perUrl: 6, maxAgeMs: 60_000 })
  const rules = await projectRules()
  const results: SweepResult[] = []
  try {
    const end = 20 + s.sweeps * 10
    for (let step = 0; step * STEP_S <= end; step++) {
      const t = step * STEP_S
      const toPrimary: unknown[] = []
      const toShadow: unknown[] = []
      for (let c = 0; c < CHARACTERS.length; c++) {
        // Character c sends frame n at n * 2 s + c * 0.25 s; the shadow gets it lagFrames later.
        const due = (t - c * 0.25) / FRAME_S
        if (due >= 0 && Number.isInteger(due)) toPrimary.push(frameAt(c, due))
        const late = due - s.lagFrames
        if (late >= 0 && Number.isInteger(late)) toShadow.push(frameAt(c, late))
      }
      if (toPrimary.length > 0) await sendFrames(pair.primary.url, primaryWs, toPrimary)
      if (toShadow.length > 0) await sendFrames(pair.shadow.url, shadowWs, toShadow)
      if (t % CACHE_S === 0) await pair.primary.tracker.settle()
      if ((t - s.phaseS + CACHE_S * 10) % CACHE_S === 0) await pair.shadow.tracker.settle()
      if (t >= 20 && (t - 20) % 10 === 7) {
        await Promise.all([pair.primary.tracker.flush(), pair.shadow.tracker.flush()])
        results.push(await sweepOnce(pair.primary.url, front?.url ?? pair.shadow.url, { rules, history }))
      }
    }
    return results
  } finally {
    primaryWs.close()
    shadowWs.close()
    await front?.close()
    await pair.close()
  }
}

describe('a lagging shadow on phased caches compares clean; a wrong value at the same frame does not', () => {
  const cases: [number, number][] = [
    [1, 0],
    [1, 5],
    [2, 1.5],
    [2, 3.5],
    [5, 0],
    [5, 2.5],
  ]
  for (const [lagFrames, phaseS] of cases) {
    it(`shadow ${lagFrames} frame(s) behind, caches ${phaseS} s apart: every sweep clean, the lag measured`, async () => {
      const sweeps = await runScenario({ lagFrames, phaseS, sweeps: 3 })
      for (const sweep of sweeps) {
        expect({ id: sweep.id, mismatches: mismatchesOf(sweep), errors: sweep.errors }).toEqual({
          id: sweep.id,
          mismatches: [],
          errors: [],
        })
        expect(sweep.verdict).toBe('parity')
      }
      const behind = sweeps.map((x) => x.lag.behind)
      expect(Math.max(...behind)).toBeGreaterThan(0)
      expect(Math.max(...sweeps.map((x) => x.lag.maxMs ?? 0))).toBeGreaterThanOrEqual(
        lagFrames * FRAME_S * 1000,
      )
    }, 120_000)
  }

  it('still compares under lag: a 1e-9 shift of the stored positions is caught in /trails in the first sweep', async () => {
    const sweeps = await runScenario({
      lagFrames: 2,
      phaseS: 1.5,
      sweeps: 1,
      shadowUrl: (pair) =>
        startRewritingProxy(pair.shadow.url, (path, body) => {
          if (path.startsWith('/trails')) for (const row of body.trails) row.ew += 1e-9
          return body
        }),
    })
    expect(sweeps[0]!.verdict).toBe('mismatch')
    expect(mismatchesOf(sweeps[0]!)).toContain('trails value body.trails[].ew')
  }, 120_000)

  it('catches kills one frame ahead at the same timestamps, on /live, in the first sweep', async () => {
    const sweeps = await runScenario({
      lagFrames: 0,
      phaseS: 0,
      sweeps: 1,
      shadowUrl: (pair) =>
        startRewritingProxy(pair.shadow.url, (path, body) => {
          if (path === '/live') for (const p of body.players) p.kills += 1
          return body
        }),
    })
    expect(sweeps[0]!.verdict).toBe('mismatch')
    expect(mismatchesOf(sweeps[0]!)).toContain('live value body.players[].kills')
    expect(sweeps[0]!.lag.paired).toBeGreaterThan(0)
  }, 120_000)
})
