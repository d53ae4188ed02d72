import { overlord } from './support/cli.ts'
import { access, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import zlib from 'node:zlib'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { CaptureLine } from '../src/capture/format.ts'
import { readCapture } from '../src/capture/reader.ts'
import { CaptureWriter } from '../src/capture/writer.ts'
import { registerTee } from '../src/cli/commands/tee.ts'
import { buildProgram } from '../src/cli/program.ts'
import { VirtualClock } from '../src/replay/virtual-clock.ts'
import { createTestDatabase } from './support/db.ts'
import { connectPlugin, SECRET, sendFrames, startTracker, telemetry } from './support/tracker.ts'
import { waitFor } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'sim-3chars-seed42.ndjson.gz')
const LIVE = { '/live': { status: 200, body: { players: [] } } }

const tmp = async (name: string) => join(await mkdtemp(join(tmpdir(), 'overlord-durability-')), name)

/** What a reader finds in the file right now: every complete line, gzip trailer or not. */
async function linesOnDisk(path: string): Promise<CaptureLine[]> {
  const raw = await readFile(path)
  const text = path.endsWith('.gz')
    ? zlib.gunzipSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8')
    : raw.toString('utf8')
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l) as CaptureLine)
}

const kinds = (lines: CaptureLine[]) => lines.map((l) => l.kind)

describe('a capture is on disk while it is written (was: 10 bytes of gzip header for a whole run)', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('gzip: the header at once, events within about a second, and readable as a truncated capture', async () => {
    const path = await tmp('live.ndjson.gz')
    const capture = new CaptureWriter({ path, source: 'proxy', clock: { now: Date.now }, logger })
    cleanups.push(() => capture.finish())
    await capture.ready()
    await waitFor('the header on disk', async () => kinds(await linesOnDisk(path)).length === 1, 1000)

    capture.open('c1')
    capture.frame('c1', '{"type":"telemetry","character_name":"Larsson"}')
    const writtenAt = Date.now()
    await waitFor(
      'the events on disk',
      async () => kinds(await linesOnDisk(path)).join() === 'header,open,frame',
      2000,
    )
    // One second of capture clock, one flush tick (200 ms) and a file write.
    expect(Date.now() - writtenAt).toBeLessThan(1500)

    const crashed = await readCapture(path)
    expect(crashed.events.map((e) => e.kind)).toEqual(['open', 'frame'])
    expect(crashed.truncated).toBe(true)
    expect(crashed.warning).toBe(
      `${path}: truncated after 2 events (gzip stream cut short, no end record); replaying what is complete`,
    )
  })

  it('gzip on a clock that stands still: a snapshot reaches the disk with it, nothing waits for one', async () => {
    const path = await tmp('still.ndjson.gz')
    const capture = new CaptureWriter({ path, source: 'proxy', clock: new VirtualClock(1_000_000), logger })
    cleanups.push(() => capture.finish())
    await capture.ready()
    capture.open('c1')
    capture.frame('c1', '{"type":"telemetry"}')
    // The capture clock never leaves its second: only the header is due.
    await sleep(500)
    expect(kinds(await linesOnDisk(path))).toEqual(['header'])
    capture.snapshot(LIVE)
    await waitFor(
      'the snapshot on disk',
      async () => kinds(await linesOnDisk(path)).join() === 'header,open,frame,snapshot',
      2000,
    )
    capture.frame('c1', '{"type":"telemetry"}')
    capture.snapshot(LIVE)
    await waitFor('the second snapshot on disk', async () => (await linesOnDisk(path)).length === 6, 2000)
    expect((await linesOnDisk(path)).at(-1)).toEqual({ kind: 'snapshot', t: 1_000_000, responses: LIVE })
  })

  it('plain NDJSON: each event is on disk as soon as the stream writes it', async () => {
    const path = await tmp('live.ndjson')
    const capture = new CaptureWriter({ path, source: 'mirror', clock: new VirtualClock(5_000), logger })
    cleanups.push(() => capture.finish())
    await capture.ready()
    capture.open('c1')
    capture.frame('c1', '{"type":"rare"}')
    await waitFor('the events on disk', async () => (await linesOnDisk(path)).length === 3, 2000)
  })

  it('flushes follow the capture clock, so a virtual-time recording is the same byte for byte however long it takes', async () => {
    const record = async (pauseMs: number): Promise<Buffer> => {
      const path = await tmp('virtual.ndjson.gz')
      const clock = new VirtualClock(1_000_500)
      const capture = new CaptureWriter({ path, source: 'simulator', clock, logger })
      await capture.ready()
      for (let i = 0; i < 6; i += 1) {
        capture.frame('c1', JSON.stringify({ type: 'telemetry', i }))
        clock.set(clock.now() + 400)
        // Long enough for the flush ticker to notice the new second before the next record does.
        if (pauseMs > 0) await sleep(pauseMs)
        if (i === 3) capture.snapshot(LIVE)
      }
      await capture.finish()
      return readFile(path)
    }
    const [slow, fast] = [await record(450), await record(0)]
    expect(slow.equals(fast)).toBe(true)
    expect(zlib.gunzipSync(fast).toString('utf8').split('\n')).toHaveLength(10)
  })

  it('still never back-pressures the tee: past the pending bound events are dropped and counted', async () => {
    const path = await tmp('bounded.ndjson.gz')
    const capture = new CaptureWriter({
      path,
      source: 'proxy',
      clock: { now: Date.now },
      logger,
      maxPendingBytes: 4096,
    })
    await capture.ready()
    const frame = JSON.stringify({ type: 'telemetry', pad: 'x'.repeat(1000) })
    for (let i = 0; i < 1000; i += 1) capture.frame('c1', frame)
    capture.snapshot(LIVE)
    expect(capture.stats.dropped).toBeGreaterThan(0)
    expect(capture.stats.frames + capture.stats.dropped).toBe(1000)
    await capture.finish()
    const { events, truncated } = await readCapture(path)
    expect(truncated).toBe(false)
    expect(events.filter((e) => e.kind === 'frame')).toHaveLength(capture.stats.frames)
    expect(events.at(-2)?.kind).toBe('snapshot')
  })
})

describe('a truncated capture reads up to its last complete record, with a warning', () => {
  it('a real gzip capture cut anywhere (mid-record, mid-gzip-block, in the trailer) gives every complete line', async () => {
    const raw = await readFile(FIXTURE)
    const full = await readCapture(FIXTURE)
    expect(full.truncated).toBe(false)
    expect(full.warning).toBeUndefined()
    const dir = await mkdtemp(join(tmpdir(), 'overlord-cut-'))
    const offsets = [1000, 2000, 5000, 20_001, Math.floor(raw.length / 2), raw.length - 100, raw.length - 4]
    let midRecord = 0
    for (const offset of offsets) {
      const path = join(dir, `cut-${offset}.ndjson.gz`)
      await writeFile(path, raw.subarray(0, offset))
      const recoverable = zlib
        .gunzipSync(raw.subarray(0, offset), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
        .toString('utf8')
      if (!recoverable.endsWith('\n')) midRecord += 1
      // Complete lines, less the header.
      const complete = recoverable.split('\n').length - 2
      const cut = await readCapture(path)
      expect(cut.header).toEqual(full.header)
      expect(cut.events).toEqual(full.events.slice(0, complete))
      expect(cut.truncated).toBe(true)
      expect(cut.warning).toMatch(
        new RegExp(
          `^${path}: truncated after [0-9 ]+ events \\(gzip stream cut short.*\\); replaying what is complete$`,
        ),
      )
    }
    expect(midRecord).toBeGreaterThanOrEqual(5)
    // Cut in the trailer: every record is there, end included, but the file is still not whole.
    expect((await readCapture(join(dir, `cut-${raw.length - 4}.ndjson.gz`))).warning).toBe(
      `${join(dir, `cut-${raw.length - 4}.ndjson.gz`)}: truncated after 1 056 events (gzip stream cut short); replaying what is complete`,
    )
  })

  it('a cut inside the header line is a clear error, gzipped or not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'overlord-cut-'))
    const raw = await readFile(FIXTURE)
    const headerLine = zlib.gunzipSync(raw).toString('utf8').split('\n')[0] as string
    const cases: [string, Buffer][] = [
      // The 10-byte gzip header alone: what a crashed capture held before it flushed.
      ['gzip-header.ndjson.gz', raw.subarray(0, 10)],
      ['mid-header.ndjson.gz', raw.subarray(0, 100)],
      ['mid-header.ndjson', Buffer.from(headerLine.slice(0, 40))],
    ]
    for (const [name, bytes] of cases) {
      const path = join(dir, name)
      await writeFile(path, bytes)
      await expect(readCapture(path), name).rejects.toMatchObject({
        code: 'TEE_ERR_CAPTURE',
        message: `${path}: cut short before its header line was complete; there is nothing to replay`,
      })
    }
  })

  it('plain NDJSON cut mid-record, and a capture that merely lacks its end record', async () => {
    const path = await tmp('cut.ndjson')
    const capture = new CaptureWriter({ path, source: 'mirror', clock: new VirtualClock(7_000), logger })
    await capture.ready()
    capture.open('c1')
    capture.frame('c1', '{"type":"telemetry","character_name":"Larsson"}')
    capture.snapshot(LIVE)
    await capture.finish()
    const text = await readFile(path, 'utf8')
    const withoutEnd = text.slice(0, text.lastIndexOf('{"kind":"end"'))
    await writeFile(path, withoutEnd)
    const noEnd = await readCapture(path)
    expect(noEnd.events.map((e) => e.kind)).toEqual(['open', 'frame', 'snapshot'])
    expect(noEnd.warning).toBe(
      `${path}: truncated after 3 events (no end record); replaying what is complete`,
    )

    await writeFile(path, withoutEnd.slice(0, withoutEnd.indexOf('"responses"')))
    const midRecord = await readCapture(path)
    expect(midRecord.events.map((e) => e.kind)).toEqual(['open', 'frame'])
    expect(midRecord.warning).toBe(
      `${path}: truncated after 2 events (the last record cut short, no end record); replaying what is complete`,
    )
  })

  it('replay prints the warning on stderr and replays what is complete', async () => {
    const raw = await readFile(FIXTURE)
    const path = await tmp('crashed.ndjson.gz')
    await writeFile(path, raw.subarray(0, Math.floor(raw.length * 0.6)))
    const { warning } = await readCapture(path)
    const database = await createTestDatabase()
    try {
      const run = await overlord(['replay', path, '--database-url', database.url], { LOG_LEVEL: 'warn' })
      expect(run.stderr).toEqual([warning])
      expect(run.stdout).toMatch(new RegExp(`^EQUAL ${path}: `, 'm'))
      expect(run.code).toBe(0)
    } finally {
      await database.drop()
    }
  }, 60_000)
})

/** The program in process (commander's exitOverride), its output lines kept. */
function cli() {
  const lines: string[] = []
  const program = buildProgram({ env: {}, logger, out: (l) => lines.push(l) }, [registerTee])
  return { lines, run: (args: string[]) => program.parseAsync(args, { from: 'user' }) }
}

describe('capture and a primary that already holds data', () => {
  it('refuses it with one line and exit 2, and with --allow-existing records it as the baseline', async () => {
    const primary = await startTracker()
    try {
      const capture = (out: string, ...more: string[]) => [
        ...['capture', 'proxy', '--listen', '127.0.0.1:0', '--primary', primary.wsUrl],
        ...['--snapshots-from', primary.url, '--out', out, ...more],
      ]

      // A fresh primary: no flag needed, and the (empty) baseline is recorded all the same.
      const freshOut = await tmp('fresh.ndjson.gz')
      await cli().run(capture(freshOut, '--duration', '200ms'))
      const fresh = await readCapture(freshOut)
      expect(fresh.events[0]).toMatchObject({ kind: 'snapshot', baseline: true })
      expect(fresh.baseline?.['/live']).toEqual({ status: 200, body: { players: [] } })

      const plugin = await connectPlugin(primary.wsUrl)
      await sendFrames(primary.url, plugin, [telemetry('Larsson'), telemetry('Ulfhild')])
      plugin.close()
      await primary.tracker.settle()

      const out = await tmp('refused.ndjson.gz')
      const refused = await overlord(capture(out, '--duration', '5s'), { LOG_LEVEL: 'warn' })
      expect(refused.code).toBe(2)
      expect(refused.stderr).toHaveLength(1)
      expect(refused.stderr[0]).toMatch(
        new RegExp(
          `^capture: the primary at ${primary.url}/ already holds data \\(2 players in /live, 2 trail points[^)]*\\); ` +
            'a replay could not tell that history from what the capture sends\\. ' +
            'Start from a fresh primary, or pass --allow-existing to record it as the baseline$',
        ),
      )
      await expect(access(out)).rejects.toMatchObject({ code: 'ENOENT' })

      const allowed = cli()
      const running = allowed.run(capture(out, '--duration', '2s', '--allow-existing'))
      const listening = 'tee proxy listening on '
      await waitFor('the tee to listen', () => allowed.lines.some((l) => l.startsWith(listening)))
      const teeUrl = (allowed.lines.find((l) => l.startsWith(listening)) as string).slice(listening.length)
      const through = await connectPlugin(teeUrl.replace(/\/ws\/position$/, ''), SECRET)
      await sendFrames(primary.url, through, [telemetry('Larsson', { kills: 3 })])
      through.close()
      await running
      expect(allowed.lines[0]).toMatch(
        /^capture: recorded the primary at .* as the baseline: it already holds data \(2 players in \/live, /,
      )

      const recorded = await readCapture(out)
      expect(recorded.truncated).toBe(false)
      expect(recorded.events.map((e) => e.kind)).toEqual([
        'snapshot',
        'open',
        'frame',
        'close',
        'snapshot',
        'end',
      ])
      expect(recorded.events[0]).toMatchObject({ kind: 'snapshot', baseline: true })
      expect(recorded.events[4]).not.toHaveProperty('baseline')
      const live = recorded.baseline?.['/live']?.body as { players: { character_name: string }[] } | undefined
      expect(live?.players.map((p) => p.character_name).sort()).toEqual(['Larsson', 'Ulfhild'])

      // A tee's side recording runs beside a primary in service: it records the baseline and says so.
      const teeOut = await tmp('tee.ndjson')
      const tee = cli()
      await tee.run([
        ...['tee', 'proxy', '--listen', '127.0.0.1:0', '--primary', primary.wsUrl],
        ...['--snapshots-from', primary.url, '--capture', teeOut, '--duration', '200ms'],
      ])
      expect(tee.lines[0]).toMatch(
        /^capture: recorded the primary at .* as the baseline: it already holds data/,
      )
      expect((await readCapture(teeOut)).events[0]).toMatchObject({ kind: 'snapshot', baseline: true })
    } finally {
      await primary.close()
    }
  }, 60_000)

  it('refuses a primary it cannot read, since it cannot tell whether it is fresh', async () => {
    const out = await tmp('unread.ndjson')
    await expect(
      cli().run([
        ...['capture', 'proxy', '--listen', '127.0.0.1:0', '--primary', 'ws://127.0.0.1:9'],
        ...['--snapshots-from', 'http://127.0.0.1:9', '--out', out, '--endpoint', '/live'],
      ]),
    ).rejects.toMatchObject({
      code: 'overlord.verdict',
      exitCode: 2,
      message:
        'capture: could not tell whether the primary at http://127.0.0.1:9/ already holds data (/live: no answer); ' +
        'a replay could not tell such history from what the capture sends. ' +
        'Check --snapshots-from and PRIMARY_COOKIE, or pass --allow-existing to record what it answered as the baseline',
    })
    await expect(access(out)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
