import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Exposition, parseExposition } from './support/prometheus-text.ts'
import {
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker()
})
afterAll(() => t.close())

async function scrape(url: string): Promise<{ contentType: string | null; exposition: Exposition }> {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  return { contentType: res.headers.get('content-type'), exposition: parseExposition(await res.text()) }
}

describe('GET /metrics (Prometheus text)', () => {
  it('serves the text format 0.0.4, and its counters move with real frames', async () => {
    const before = (await scrape(t.url)).exposition
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      telemetry('Prom One'),
      telemetry('Prom Two'),
      { type: 'vitals', character_name: 'Prom One', health_current: 10 },
      '{not json',
      { character_name: 'No Type' },
    ])
    ws.close()
    const { contentType, exposition: after } = await scrape(t.url)
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/)

    const moved = (name: string, labels?: Record<string, string>): number =>
      (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0)
    expect(moved('overlord_frames_received_total')).toBe(5)
    expect(moved('overlord_frames_accepted_total')).toBe(3)
    expect(moved('overlord_frames_bad_total')).toBe(2)
    expect(moved('overlord_frames_accepted_by_type_total', { type: 'telemetry' })).toBe(2)
    expect(moved('overlord_frames_accepted_by_type_total', { type: 'vitals' })).toBe(1)
    expect(moved('overlord_frames_bad_by_reason_total', { reason: 'not_json' })).toBe(1)
    expect(moved('overlord_frames_bad_by_reason_total', { reason: 'no_type' })).toBe(1)

    expect(after.types.get('overlord_frames_received_total')).toBe('counter')
    expect(after.types.get('overlord_frames_bad_by_reason_total')).toBe('counter')
    expect(after.types.get('overlord_persist_pending')).toBe('gauge')
    expect(after.types.get('overlord_browsers')).toBe('gauge')
    expect(after.types.get('overlord_read_only')).toBe('gauge')
    expect(after.value('overlord_read_only')).toBe(0)
    // The process metrics of prom-client come along, under their standard names.
    expect(after.types.get('process_cpu_user_seconds_total')).toBe('counter')
    expect(after.value('process_resident_memory_bytes')).toBeGreaterThan(0)
  })

  it('exports every number of /metrics.json under the naming rule', async () => {
    const json = (await getJson(`${t.url}/metrics.json`)).body as Record<string, unknown>
    const { exposition } = await scrape(t.url)
    const names = new Set(exposition.types.keys())
    for (const [key, value] of Object.entries(json)) {
      if (typeof value !== 'number') continue
      expect(names.has(`overlord_${key}_total`) || names.has(`overlord_${key}`), key).toBe(true)
    }
    expect(names.has('overlord_handler_errors_total')).toBe(true)
    expect(names.has('overlord_persist_rejected_by_reason_total')).toBe(true)
  })

  it('keeps one registry per tracker: a second tracker in the process counts only its own frames', async () => {
    const other = await startTracker()
    try {
      const ws = await connectPlugin(other.wsUrl)
      await sendFrames(other.url, ws, [telemetry('Elsewhere')])
      ws.close()
      const mine = (await scrape(t.url)).exposition
      const theirs = (await scrape(other.url)).exposition
      expect(theirs.value('overlord_frames_received_total')).toBe(1)
      expect(mine.value('overlord_frames_received_total')).toBeGreaterThanOrEqual(5)
    } finally {
      await other.close()
    }
  })
})

describe('GET /metrics.json', () => {
  it('is the JSON counters object the harness reads', async () => {
    const res = await fetch(`${t.url}/metrics.json`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({
      frames_received: expect.any(Number),
      frames_accepted: expect.any(Number),
      bad_by_reason: expect.objectContaining({ not_json: 1 }),
      by_type: expect.objectContaining({ telemetry: expect.any(Number) }),
      persist_pending: expect.any(Number),
      read_only: false,
    })
  })

  it('both routes keep the auth of every non-public route: refused behind a proxy', async () => {
    for (const path of ['/metrics', '/metrics.json']) {
      const res = await fetch(`${t.url}${path}`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })
      expect(res.status, path).toBe(401)
    }
  })
})
