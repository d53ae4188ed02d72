import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { AlertStats } from '../src/tracker/alerts.ts'
import type { TrackerOptions } from '../src/tracker/build-tracker.ts'
import {
  connectBrowser,
  connectPlugin,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
  waitForMetrics,
} from './support/tracker.ts'
import { captureLogs } from './support/logs.ts'

/** The webhook token: it must never appear in a log line. */
const TOKEN = 'sekrit-webhook-token'
const HOOK_PATH = `/api/webhooks/123456/${TOKEN}`

/** What the receiver does with one request: answer with a status (and headers), or never answer. */
type Answer = { status: number; headers?: Record<string, string> } | 'stall'

interface Received {
  at: number
  path: string
  headers: IncomingHttpHeaders
  body: { content: string; allowed_mentions?: unknown }
}

/** A real HTTP server standing in for Discord: answers by script (then 204), records each request. */
class WebhookReceiver {
  readonly requests: Received[] = []
  readonly #server: Server
  readonly #script: Answer[]
  readonly #stalled: ServerResponse[] = []
  readonly #waiters: { n: number; resolve: () => void }[] = []
  url = ''

  constructor(script: Answer[] = []) {
    this.#script = [...script]
    this.#server = createServer(async (req, res) => {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      this.requests.push({
        at: performance.now(),
        path: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      })
      for (const w of this.#waiters.filter((w) => this.requests.length >= w.n)) w.resolve()
      const answer = this.#script.shift() ?? { status: 204 }
      if (answer === 'stall') {
        this.#stalled.push(res)
        return
      }
      res.writeHead(answer.status, answer.headers)
      res.end(answer.status === 204 ? undefined : '{"message":"scripted"}')
    })
  }

  async start(): Promise<this> {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${HOOK_PATH}`
    return this
  }

  /** Resolves once `n` requests have arrived. */
  received(n: number): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ n, resolve }))
  }

  async close(): Promise<void> {
    for (const res of this.#stalled) res.destroy()
    this.#server.closeAllConnections()
    this.#server.close()
    await once(this.#server, 'close')
  }
}

/** A clock the test moves by hand: detections run on the tracker's clock. */
function manualClock() {
  return {
    t: Date.UTC(2026, 10, 22, 8),
    now() {
      return this.t
    },
  }
}

const vitals = (character: string, vitae: number) => ({
  type: 'vitals',
  character_name: character,
  health_current: 50,
  vitae,
})

/** Short bounds so retries and timeouts take milliseconds, not the production seconds. */
const FAST = { backoffMs: 10, maxBackoffMs: 1_000, closeGraceMs: 100 }

let receiver: WebhookReceiver | undefined
let running: RunningTracker | undefined
afterEach(async () => {
  await running?.close()
  await receiver?.close()
  running = undefined
  receiver = undefined
})

async function setUp(script: Answer[], options: Partial<TrackerOptions> = {}) {
  receiver = await new WebhookReceiver(script).start()
  running = await startTracker({
    discordWebhookUrl: receiver.url,
    alertsEnabled: true,
    ...options,
    alertTuning: { ...FAST, ...options.alertTuning },
  })
  const plugin = await connectPlugin(running.wsUrl)
  return { receiver, t: running, plugin }
}

/** The tracker's alert counters as served at /metrics, once `pred` holds. */
async function alertsWhen(url: string, pred: (a: AlertStats) => boolean): Promise<AlertStats> {
  return (await waitForMetrics(url, (m) => pred(m.alerts))).alerts
}

describe('death alerts', () => {
  it('posts a death once, and not again within 5 minutes', async () => {
    const clock = manualClock()
    const { receiver, t, plugin } = await setUp([], { clock })
    await sendFrames(t.url, plugin, [vitals('Larsson', 0), vitals('Larsson', 5)])
    await alertsWhen(t.url, (a) => a.posted_by_kind.death === 1)
    expect(receiver.requests).toHaveLength(1)
    const [post] = receiver.requests
    expect(post!.path).toBe(HOOK_PATH)
    expect(post!.headers['content-type']).toBe('application/json')
    expect(post!.body).toEqual({ content: '💀 Larsson died (vitae 5%)', allowed_mentions: { parse: [] } })

    clock.t += 4 * 60_000
    await sendFrames(t.url, plugin, [vitals('Larsson', 0), vitals('Larsson', 10)])
    // Detection is synchronous with ingest: nothing was queued, nothing can still arrive.
    const quiet = await alertsWhen(t.url, () => true)
    expect(quiet).toMatchObject({ detected_by_kind: { death: 1 }, queued: 0, in_flight: 0 })
    expect(receiver.requests).toHaveLength(1)

    clock.t += 60_000
    await sendFrames(t.url, plugin, [vitals('Larsson', 0), vitals('Larsson', 10)])
    await alertsWhen(t.url, (a) => a.posted_by_kind.death === 2)
    expect(receiver.requests.map((r) => r.body.content)).toEqual([
      '💀 Larsson died (vitae 5%)',
      '💀 Larsson died (vitae 10%)',
    ])
  })
})

describe('idle alerts', () => {
  it('posts after 5 minutes of idle, once, and again only after leaving idle', async () => {
    const clock = manualClock()
    const { receiver, t, plugin } = await setUp([], { clock })
    const idle = (state = 'Idle') => telemetry('Afk', { vt_state: state })
    await sendFrames(t.url, plugin, [idle()])
    clock.t += 4 * 60_000 + 59_999
    await sendFrames(t.url, plugin, [idle('idle')])
    expect((await alertsWhen(t.url, () => true)).detected_by_kind.idle).toBe(0)
    clock.t += 1
    await sendFrames(t.url, plugin, [idle('IDLE')])
    await alertsWhen(t.url, (a) => a.posted_by_kind.idle === 1)
    expect(receiver.requests[0]!.body.content).toBe('💤 Afk has been idle for 5 minutes')

    clock.t += 10 * 60_000
    await sendFrames(t.url, plugin, [idle(), idle()])
    expect((await alertsWhen(t.url, () => true)).detected_by_kind.idle).toBe(1)

    await sendFrames(t.url, plugin, [idle('Combat')])
    clock.t += 60_000
    await sendFrames(t.url, plugin, [idle()])
    clock.t += 5 * 60_000
    await sendFrames(t.url, plugin, [idle()])
    await alertsWhen(t.url, (a) => a.posted_by_kind.idle === 2)
    expect(receiver.requests).toHaveLength(2)
  })
})

describe('delivery failures', () => {
  it('retries a 500 and delivers on the next 200, never logging the webhook token', async () => {
    const logs = captureLogs()
    const { receiver, t, plugin } = await setUp([{ status: 500 }, { status: 200 }], { logger: logs.logger })
    await sendFrames(t.url, plugin, [vitals('Retry', 0), vitals('Retry', 3)])
    const a = await alertsWhen(t.url, (a) => a.posted_by_kind.death === 1)
    expect(a).toMatchObject({
      retries: 1,
      failed_by_kind: { death: 0 },
      attempt_errors_by_reason: { http_5xx: 1 },
    })
    expect(receiver.requests).toHaveLength(2)
    expect(receiver.requests[1]!.body).toEqual(receiver.requests[0]!.body)

    const alertLines = logs.lines.filter((l) => l.component === 'alerts')
    expect(alertLines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['alert post failed, retrying', 'alert posted']),
    )
    expect(alertLines.every((l) => typeof l.target === 'string' && l.target.endsWith('/[redacted]'))).toBe(
      true,
    )
    expect(logs.raw.filter((l) => l.includes(TOKEN))).toEqual([])
  })

  it('waits as long as a 429 Retry-After asks, within the cap', async () => {
    const { receiver, t, plugin } = await setUp(
      [
        { status: 429, headers: { 'retry-after': '0.3' } },
        { status: 429, headers: { 'retry-after': '3600' } },
      ],
      { alertTuning: { backoffMs: 1, maxBackoffMs: 400 } },
    )
    await sendFrames(t.url, plugin, [vitals('Slow', 0), vitals('Slow', 1)])
    const a = await alertsWhen(t.url, (a) => a.posted_by_kind.death === 1)
    expect(a).toMatchObject({ retries: 2, attempt_errors_by_reason: { http_429: 2 } })
    const [first, second, third] = receiver.requests.map((r) => r.at)
    // Without Retry-After the backoff would be about 1 ms; an hour is capped at 400 ms.
    expect(second! - first!).toBeGreaterThanOrEqual(290)
    expect(third! - second!).toBeGreaterThanOrEqual(390)
    expect(third! - second!).toBeLessThan(10_000)
  })

  it('gives up at once on a 4xx other than 429, and after maxAttempts on 5xx', async () => {
    const { receiver, t, plugin } = await setUp(
      [{ status: 404 }, { status: 502 }, { status: 503 }, { status: 500 }],
      { alertTuning: { maxAttempts: 3, maxInFlight: 1 } },
    )
    await sendFrames(t.url, plugin, [vitals('Gone', 0), vitals('Gone', 1)])
    await alertsWhen(t.url, (a) => a.failed_by_kind.death === 1)
    expect(receiver.requests).toHaveLength(1)
    await sendFrames(t.url, plugin, [vitals('Down', 0), vitals('Down', 1)])
    const a = await alertsWhen(t.url, (a) => a.failed_by_kind.death === 2)
    expect(receiver.requests).toHaveLength(4)
    expect(a).toMatchObject({
      posted_by_kind: { death: 0 },
      retries: 2,
      attempt_errors_by_reason: { http_4xx: 1, http_5xx: 3 },
    })
  })
})

describe('isolation from ingest', () => {
  it('keeps accepting and broadcasting frames while a post hangs', async () => {
    // A deadline far beyond the test: the post is certainly still hanging when ingest is checked.
    const { receiver, t, plugin } = await setUp(['stall'], { alertTuning: { timeoutMs: 60_000 } })
    const browser = await connectBrowser(t.wsUrl)
    await sendFrames(t.url, plugin, [vitals('Hung', 0), vitals('Hung', 5)])
    await receiver.received(1)

    const before = (await waitForMetrics(t.url, () => true)).frames_accepted as number
    const frames = Array.from({ length: 50 }, (_, i) => telemetry('Busy', { kills: i }))
    await sendFrames(t.url, plugin, frames)
    await browser.waitFor((m) => m.character_name === 'Busy' && m.kills === 49)
    const during = await waitForMetrics(t.url, () => true)
    expect(during.frames_accepted).toBe(before + 50)
    expect(during.alerts).toMatchObject({
      in_flight: 1,
      posted_by_kind: { death: 0 },
      failed_by_kind: { death: 0 },
    })
    browser.ws.close()
  })

  it('times out a post that never gets an answer, retries it, and counts the failure', async () => {
    const { receiver, t, plugin } = await setUp(['stall', 'stall'], {
      alertTuning: { timeoutMs: 200, maxAttempts: 2 },
    })
    await sendFrames(t.url, plugin, [vitals('Hung', 0), vitals('Hung', 5)])
    const a = await alertsWhen(t.url, (a) => a.failed_by_kind.death === 1)
    expect(a).toMatchObject({ in_flight: 0, retries: 1, attempt_errors_by_reason: { timeout: 2 } })
    await receiver.received(2)
    expect(receiver.requests).toHaveLength(2)
  })

  it('drops and counts alerts past the queue bound, and shutdown abandons the rest without hanging', async () => {
    const { receiver, t, plugin } = await setUp(['stall'], {
      alertTuning: { maxQueued: 2, maxInFlight: 1, timeoutMs: 60_000 },
    })
    const deaths = ['A', 'B', 'C', 'D', 'E'].flatMap((c) => [vitals(c, 0), vitals(c, 5)])
    await sendFrames(t.url, plugin, deaths)
    const a = await alertsWhen(t.url, () => true)
    expect(a).toMatchObject({
      detected_by_kind: { death: 5 },
      in_flight: 1,
      queued: 2,
      dropped_by_kind: { death: 2 },
    })
    await receiver.received(1)

    running = undefined
    try {
      const started = performance.now()
      await t.tracker.close()
      expect(performance.now() - started).toBeLessThan(10_000)
      // One abandoned on the wire, two still queued: every alert is accounted for.
      expect(t.tracker.metrics().alerts).toMatchObject({
        detected_by_kind: { death: 5 },
        posted_by_kind: { death: 0 },
        dropped_by_kind: { death: 5 },
        queued: 0,
        in_flight: 0,
      })
    } finally {
      await t.database.drop()
    }
  })
})

describe('shadow safety (CONTRACT.md §10)', () => {
  it('with a webhook but no explicit enable, posts nothing and counts what it would have posted', async () => {
    const clock = manualClock()
    const logs = captureLogs()
    const { receiver, t, plugin } = await setUp([], { clock, alertsEnabled: undefined, logger: logs.logger })
    await sendFrames(t.url, plugin, [vitals('Shadowed', 0), vitals('Shadowed', 5)])
    await sendFrames(t.url, plugin, [telemetry('Shadowed', { vt_state: 'Idle' })])
    clock.t += 5 * 60_000
    await sendFrames(t.url, plugin, [telemetry('Shadowed', { vt_state: 'Idle' })])

    const m = await waitForMetrics(t.url, () => true)
    expect(m.alerts).toMatchObject({
      delivering: false,
      detected_by_kind: { death: 1, idle: 1 },
      suppressed_by_kind: { death: 1, idle: 1 },
      posted_by_kind: { death: 0, idle: 0 },
      queued: 0,
      in_flight: 0,
    })
    expect(m.suppressed.discord_alert).toBe(2)
    expect(receiver.requests).toEqual([])
    const wouldHave = logs.lines.filter((l) => l.component === 'alerts' && l.kind !== undefined)
    expect(wouldHave.map((l) => (l.alert as { content: string }).content)).toEqual([
      '💀 Shadowed died (vitae 5%)',
      '💤 Shadowed has been idle for 5 minutes',
    ])
    expect(logs.raw.filter((l) => l.includes(TOKEN))).toEqual([])
  })
})
