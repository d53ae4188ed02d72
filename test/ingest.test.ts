import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  closeCode,
  connectBrowser,
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
  waitForMetrics,
} from './support/tracker.ts'
import { captureLogs } from './support/logs.ts'

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker({ sharedSecretLegacy: 'old-secret' })
})
afterAll(() => t.close())

describe('plugin auth', () => {
  it('accepts the secret by header, by query and the legacy secret', async () => {
    for (const [secret, how] of [
      ['test-plugin-secret', 'header'],
      ['test-plugin-secret', 'query'],
      ['old-secret', 'header'],
    ] as const) {
      const ws = await connectPlugin(t.wsUrl, secret, how)
      await sendFrames(t.url, ws, [telemetry(`Auth ${how} ${secret}`)])
      expect(ws.readyState).toBe(ws.OPEN)
      ws.close()
    }
  })

  it('closes 1008 on a wrong or missing secret', async () => {
    const wrong = await connectPlugin(t.wsUrl, 'nope')
    expect(await closeCode(wrong)).toBe(1008)
    const missing = await connectPlugin(t.wsUrl, null)
    expect(await closeCode(missing)).toBe(1008)
  })

  it('fails closed when no secret is configured', async () => {
    const open = await startTracker({ sharedSecret: undefined })
    try {
      const ws = await connectPlugin(open.wsUrl, '')
      expect(await closeCode(ws)).toBe(1008)
    } finally {
      await open.close()
    }
  })
})

describe('bad frames', () => {
  it('counts and drops a bad frame while the connection stays open and later frames still count', async () => {
    const before = (await getJson(`${t.url}/metrics.json`)).body
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      '{not json',
      '[1,2,3]',
      '{"character_name":"NoType"}',
      '{"type":"telemetry"}',
    ])
    const browser = await connectBrowser(t.wsUrl)
    await sendFrames(t.url, ws, [{ type: 'chat', character_name: 'Bad Frame Survivor', text: 'still here' }])
    await browser.waitFor((m) => m.text === 'still here')
    const after = (await getJson(`${t.url}/metrics.json`)).body
    expect(after.frames_bad - before.frames_bad).toBe(4)
    expect(after.bad_by_reason.not_json - (before.bad_by_reason.not_json ?? 0)).toBe(1)
    expect(after.bad_by_reason.no_character - (before.bad_by_reason.no_character ?? 0)).toBe(1)
    expect(ws.readyState).toBe(ws.OPEN)
    ws.close()
    browser.ws.close()
  })

  it('logs bad frames at a limited rate, as structured records', async () => {
    const { logger, lines } = captureLogs('warn')
    const logged = await startTracker({ logger })
    try {
      const ws = await connectPlugin(logged.wsUrl)
      await sendFrames(
        logged.url,
        ws,
        Array.from({ length: 200 }, () => '{broken'),
      )
      expect((await getJson(`${logged.url}/metrics.json`)).body.frames_bad).toBe(200)
      const records = lines.filter((l) => l.msg === 'bad frame dropped')
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({ component: 'ingest', reason: 'not_json', level: 40 })
      ws.close()
    } finally {
      await logged.close()
    }
  })

  it('closes an oversize frame with 1009', async () => {
    const small = await startTracker({ maxFrameBytes: 1024 })
    try {
      const ws = await connectPlugin(small.wsUrl)
      const closed = closeCode(ws)
      ws.send(JSON.stringify({ type: 'chat', character_name: 'Big', text: 'x'.repeat(2048) }))
      expect(await closed).toBe(1009)
      await waitForMetrics(small.url, (m) => m.frames_oversize === 1)
    } finally {
      await small.close()
    }
  })
})
