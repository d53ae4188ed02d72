import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { readCapture } from '../src/capture/reader.ts'
import { CaptureWriter } from '../src/capture/writer.ts'
import { encodeEnvelopes } from '../src/tee/envelope.ts'
import { buildInlineProxy } from '../src/tee/inline-proxy.ts'
import { buildMirrorReceiver } from '../src/tee/mirror-receiver.ts'
import { SnapshotPoller } from '../src/capture/snapshots.ts'
import { waitFor, WsSink } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })
const PLUGIN_SECRET = 'plugin-secret-Zq9!'
const QUERY_SECRET = 'query-secret-Wx7&'
const TEE_SECRET = 'tee-secret-Kk3#'
const COOKIE = 'session=eyJ1c2VybmFtZSI6ImFkbWluIn0.ZZZ.signature'

const tmp = async (name: string) => join(await mkdtemp(join(tmpdir(), 'overlord-capture-')), name)

describe('capture', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('records the proxied stream and primary snapshots, never a secret or a cookie (gzip)', async () => {
    // A primary whose read endpoint leaks the cookie and the secret back, the worst case for a capture.
    const primary = new WsSink({
      http: (req, res) => {
        res.setHeader('content-type', 'application/json')
        res.setHeader('set-cookie', `${COOKIE}; HttpOnly`)
        res.end(
          JSON.stringify({
            players: [{ character_name: 'Larsson' }],
            echo: req.headers.cookie,
            s: PLUGIN_SECRET,
          }),
        )
      },
    })
    const primaryUrl = await primary.listen()
    cleanups.push(() => primary.close())
    const path = await tmp('cap.ndjson.gz')
    const clock = { now: Date.now }
    const capture = new CaptureWriter({
      path,
      source: 'proxy',
      clock,
      logger,
      primary: `${primaryUrl.replace('ws', 'http')}/?secret=${QUERY_SECRET}`,
      secrets: [COOKIE.slice('session='.length)],
    })
    const proxy = buildInlineProxy({ primaryUrl, capture, clock, logger })
    const proxyUrl = (await proxy.listen()).replace('http', 'ws')
    cleanups.push(() => proxy.close())
    const poller = new SnapshotPoller(
      {
        baseUrl: primaryUrl.replace('ws', 'http'),
        endpoints: ['/live', '/stats/{character}'],
        cookie: COOKIE,
        intervalMs: 60_000,
        now: Date.now,
        logger,
      },
      (t, responses) => capture.snapshot(responses, t),
    )

    const ws = new WebSocket(`${proxyUrl}/ws/position?secret=${encodeURIComponent(QUERY_SECRET)}`, {
      headers: { 'X-Plugin-Secret': PLUGIN_SECRET, cookie: COOKIE },
    })
    await new Promise((resolve) => ws.once('open', resolve))
    const frames = [
      JSON.stringify({ type: 'telemetry', character_name: 'Larsson', kills_per_hour: '340.5' }),
      JSON.stringify({ type: 'chat', character_name: 'Larsson', text: `oops my secret is ${PLUGIN_SECRET}` }),
    ]
    for (const f of frames) ws.send(f)
    await waitFor('frames at the primary', () => primary.allFrames().length === 2)
    await poller.snapshotNow()
    ws.close(1000)
    await waitFor('the close', () => proxy.counters.plugins_connected === 0)
    await capture.finish({ note: 'test' })

    const text = gunzipSync(await readFile(path)).toString('utf8')
    for (const secret of [PLUGIN_SECRET, QUERY_SECRET, COOKIE, COOKIE.slice('session='.length), 'HttpOnly']) {
      expect(text).not.toContain(secret)
      expect(text).not.toContain(encodeURIComponent(secret))
    }
    const capture2 = await readCapture(path)
    expect(capture2.header.primary).toBe(`${primaryUrl.replace('ws', 'http')}/`)
    expect(capture2.events.map((e) => e.kind)).toEqual(['open', 'frame', 'frame', 'snapshot', 'close', 'end'])
    const recorded = capture2.events.flatMap((e) => (e.kind === 'frame' ? [e.data] : []))
    expect(recorded[0]).toBe(frames[0])
    expect(recorded[1]).toContain('[redacted]')
    const snapshot = capture2.events.find((e) => e.kind === 'snapshot')
    expect(Object.keys((snapshot as { responses: object }).responses)).toEqual(['/live', '/stats/Larsson'])
  })

  it('records what the mirror receiver gets, with the sender receive times, and not the tee secret', async () => {
    const path = await tmp('mirror.ndjson')
    const capture = new CaptureWriter({
      path,
      source: 'mirror',
      clock: { now: Date.now },
      logger,
      secrets: [TEE_SECRET],
    })
    const receiver = buildMirrorReceiver({ teeSecret: TEE_SECRET, capture, logger })
    const url = (await receiver.listen()).replace('http', 'ws')
    cleanups.push(() => receiver.close())
    const refused = new WebSocket(`${url}/tee`, { headers: { 'X-Tee-Secret': 'wrong' } })
    const status = await new Promise<number>((resolve) =>
      refused.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)),
    )
    expect(status).toBe(401)
    const ws = new WebSocket(`${url}/tee`, { headers: { 'X-Tee-Secret': TEE_SECRET } })
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(
      encodeEnvelopes([
        { k: 'hello', s: 'run1', v: 1 },
        { k: 'open', c: '1', t: 1000 },
        { k: 'frame', c: '1', t: 1001.25, d: '{"type":"rare","character_name":"Larsson"}' },
        { k: 'close', c: '1', t: 1002, code: 1001 },
      ]),
    )
    await waitFor('the envelopes', () => receiver.counters.envelopes === 4)
    await capture.finish()
    const { header, events } = await readCapture(path)
    expect(header.source).toBe('mirror')
    expect(events.slice(0, 3)).toEqual([
      { kind: 'open', t: 1000, conn: 'run1:1' },
      { kind: 'frame', t: 1001.25, conn: 'run1:1', data: '{"type":"rare","character_name":"Larsson"}' },
      { kind: 'close', t: 1002, conn: 'run1:1', code: 1001 },
    ])
    expect(await readFile(path, 'utf8')).not.toContain(TEE_SECRET)
    ws.close()
  })
})

describe('capture baseline', () => {
  it('is the first event after the header, or not at all', async () => {
    const path = await tmp('baseline.ndjson')
    const capture = new CaptureWriter({ path, source: 'proxy', clock: { now: () => 2_000 }, logger })
    const live = { '/live': { status: 200, body: { players: [{ character_name: 'Larsson' }] } } }
    capture.baseline(live, 1_000, 40)
    capture.frame('c1', '{"type":"telemetry"}')
    expect(() => capture.baseline(live, 2_000, 40)).toThrow(/before any event/)
    await capture.finish()
    const { events, baseline } = await readCapture(path)
    expect(baseline).toEqual(live)
    expect(events[0]).toEqual({
      kind: 'snapshot',
      baseline: true,
      t: 1_000,
      duration_ms: 40,
      responses: live,
    })
    expect(events.map((e) => e.kind)).toEqual(['snapshot', 'frame', 'end'])
    expect(capture.stats.snapshots).toBe(0)
  })
})

describe('capture file errors', () => {
  it('surfaces a capture that cannot be written instead of reporting success', async () => {
    const capture = new CaptureWriter({
      path: join(tmpdir(), 'no-such-dir-overlord', 'x.ndjson'),
      source: 'proxy',
      clock: { now: Date.now },
      logger,
    })
    await expect(capture.ready()).rejects.toMatchObject({ code: 'TEE_ERR_CAPTURE' })
    capture.frame('c', '{}')
    await expect(capture.finish()).rejects.toMatchObject({ code: 'TEE_ERR_CAPTURE' })
  })
})
