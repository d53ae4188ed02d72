import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createUser } from '../src/db/users.ts'
import { login } from './support/auth.ts'
import { type RunningNginx, startNginx } from './support/nginx.ts'
import { freePort } from './support/ws-sink.ts'
import {
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

// The shipped nginx snippets, run by a real nginx in front of a real shadow tracker.
const dir = mkdtempSync(join(tmpdir(), 'overlord-nginx-'))
let tracker: RunningTracker
let nginx: RunningNginx
let base: string

const SWITCH = readFileSync('nginx/shadow-switch.conf', 'utf8')

/** The status and body of a refused WebSocket upgrade through nginx. */
async function refusedUpgrade(url: string): Promise<{ status: number; type: string; body: string }> {
  const ws = new WebSocket(url)
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('upgrade accepted')))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => {
        body += chunk
      })
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      )
    })
  })
}

beforeAll(async () => {
  const bundle = join(dir, 'bundle')
  mkdirSync(bundle)
  writeFileSync(join(bundle, 'index.html'), '<html>shadow dashboard</html>')
  tracker = await startTracker({ staticDir: bundle, buildVersion: '2026.11.22.1200-abc1234' })
  nginx = await startNginx({ shadowPort: new URL(tracker.url).port, switchedOn: true })
  base = nginx.url
})
afterAll(async () => {
  await nginx?.close()
  await tracker?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('nginx serves the shadow at /ts/', () => {
  it('strips /ts/api/ and passes the hyphenated routes through', async () => {
    expect(await getJson(`${base}/ts/api-version`)).toEqual({
      status: 200,
      body: { version: '2026.11.22.1200-abc1234' },
    })
    expect(await getJson(`${base}/ts/api/health`)).toEqual({ status: 200, body: { status: 'ok' } })
  })

  it('serves the dashboard bundle and its client routes', async () => {
    const page = await fetch(`${base}/ts/`)
    expect(await page.text()).toBe('<html>shadow dashboard</html>')
    const route = await fetch(`${base}/ts/player/Larsson`, { headers: { accept: 'text/html' } })
    expect(await route.text()).toBe('<html>shadow dashboard</html>')
  })

  it('never grants internal trust to proxied requests (the API needs a session)', async () => {
    expect(await getJson(`${base}/ts/api/live`)).toEqual({
      status: 401,
      body: { detail: 'Not authenticated' },
    })
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ts/ws/live`)
    const code = await new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c)))
    expect(code).toBe(1008)
  })
})

describe('nginx with a session', () => {
  it("carries the cookie to the API and the WebSocket, and passes the shadow's own errors through", async () => {
    await createUser(tracker.tracker.db, { username: 'warden', password: 'correct horse' })
    const { status, cookie } = await login(`${base}/ts`, 'warden', 'correct horse')
    expect(status).toBe(200)
    const headers = { cookie: cookie! }
    expect((await getJson(`${base}/ts/api/live`, { headers })).status).toBe(200)
    // The tracker's own 503 JSON is not the switch's: proxy_intercept_errors stays off.
    expect(await getJson(`${base}/ts/api/inventory/Larsson`, { headers })).toEqual({
      status: 503,
      body: { detail: 'Inventory service not configured' },
    })

    const browser = new WebSocket(`${base.replace('http', 'ws')}/ts/ws/live`, { headers })
    const first = new Promise<Record<string, unknown>>((resolve) =>
      browser.once('message', (data) => resolve(JSON.parse(String(data)))),
    )
    await new Promise((resolve, reject) => browser.once('open', resolve).once('error', reject))
    const plugin = await connectPlugin(tracker.wsUrl)
    await sendFrames(tracker.url, plugin, [telemetry('Larsson')])
    expect(await first).toMatchObject({ character_name: 'Larsson' })
    plugin.close()
    browser.close()
  })
})

describe('the /ts/ switch and a shadow that is down', () => {
  const wsBase = () => `${base.replace('http', 'ws')}/ts/ws/live`

  it('answers every /ts/... with a one-line JSON 503 while switched off', async () => {
    await nginx.reconfigure('switch.conf', SWITCH, 503)
    try {
      for (const path of ['/ts/', '/ts/api/live', '/ts/api-version', '/ts/login', '/ts/player/Larsson']) {
        const res = await fetch(`${base}${path}`, { headers: { accept: 'text/html' } })
        expect(res.status, path).toBe(503)
        expect(res.headers.get('content-type'), path).toBe('application/json')
        expect(await res.text(), path).toBe('{"detail":"overlord-ts shadow is switched off"}\n')
      }
      expect(await refusedUpgrade(wsBase())).toEqual({
        status: 503,
        type: 'application/json',
        body: '{"detail":"overlord-ts shadow is switched off"}\n',
      })
    } finally {
      await nginx.reconfigure('switch.conf', SWITCH.replace('default off;', 'default on;'), 200)
    }
  })

  it('answers 502 with a clear body when the shadow cannot be reached', async () => {
    const upstream = nginx.read('upstream.conf')
    const dead = await freePort()
    await nginx.reconfigure(
      'upstream.conf',
      upstream.replace(/server 127\.0\.0\.1:\d+;/, `server 127.0.0.1:${dead};`),
      502,
    )
    try {
      for (const path of ['/ts/', '/ts/api/live', '/ts/api-version']) {
        const res = await fetch(`${base}${path}`)
        expect(res.status, path).toBe(502)
        expect(res.headers.get('content-type'), path).toBe('application/json')
        expect(await res.json(), path).toEqual({ detail: 'overlord-ts shadow is not reachable' })
      }
      expect(await refusedUpgrade(wsBase())).toMatchObject({ status: 502, type: 'application/json' })
    } finally {
      await nginx.reconfigure('upstream.conf', upstream, 200)
    }
  })
})
