import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeCode, connectBrowser, getJson, type RunningTracker, startTracker } from './support/tracker.ts'

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker()
})
afterAll(() => t.close())

/** What a proxy in front of the tracker adds: each alone marks a request as not internal. */
const PROXIED: Record<string, string>[] = [
  { 'X-Real-IP': '127.0.0.1' },
  { Forwarded: 'for=127.0.0.1;proto=http' },
  { 'X-Forwarded-For': '127.0.0.1' },
  { 'X-Forwarded-Host': 'localhost' },
  { 'X-Forwarded-Proto': 'https' },
]

describe('internal trust over loopback (CONTRACT.md §5)', () => {
  it('serves GET /live to a loopback request that no proxy forwarded', async () => {
    expect((await getJson(`${t.url}/live`)).status).toBe(200)
  })

  it.each(PROXIED)('refuses GET /live with %o (401)', async (headers) => {
    expect(await getJson(`${t.url}/live`, { headers })).toEqual({
      status: 401,
      body: { detail: 'Not authenticated' },
    })
  })

  it.each(PROXIED)('refuses /ws/live with %o (close 1008)', async (headers) => {
    const browser = await connectBrowser(t.wsUrl, headers)
    expect(await closeCode(browser.ws)).toBe(1008)
  })
})
