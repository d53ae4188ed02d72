import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { readCapture } from '../src/capture/reader.ts'
import { replayCapture } from '../src/replay/replay-driver.ts'
import { loadJudge } from '../src/replay/snapshot-compare.ts'
import { VirtualClock } from '../src/replay/virtual-clock.ts'
import { SECRET, startTracker } from './support/tracker.ts'

const FIXTURES = join(import.meta.dirname, '..', 'fixtures')
const files = readdirSync(FIXTURES).filter((f) => /\.ndjson(\.gz)?$/.test(f))
const logger = pino({ level: 'silent' })

describe('committed fixtures replay equal to their recorded primary (comparison engine rules)', () => {
  it('has at least one fixture', () => {
    expect(files.length).toBeGreaterThan(0)
  })

  for (const file of files) {
    it(file, async () => {
      const capture = await readCapture(join(FIXTURES, file))
      const clock = new VirtualClock(capture.events[0]?.t ?? 0)
      const tracker = await startTracker({ clock, liveCacheMs: 24 * 3_600_000 })
      try {
        const result = await replayCapture({
          capture,
          judge: await loadJudge(join(import.meta.dirname, '..', 'compare')),
          logger,
          target: { baseUrl: tracker.url, secret: SECRET, clock, settle: () => tracker.tracker.settle() },
        })
        const differences = result.snapshots.flatMap((s) =>
          s.endpoints
            .filter((e) => !e.equal)
            .map((e) => ({ at: s.offset_ms, path: e.path, differences: e.differences })),
        )
        expect(differences).toEqual([])
        expect(result.compared).toBeGreaterThan(0)
      } finally {
        await tracker.close()
      }
    }, 120_000)
  }
})
