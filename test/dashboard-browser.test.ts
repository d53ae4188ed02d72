import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { WebSocketServer } from 'ws'
import { createUser } from '../src/db/users.ts'
import { type RunningNginx, startNginx } from './support/nginx.ts'
import { connectPlugin, type RunningTracker, sendFrames, startTracker, telemetry } from './support/tracker.ts'

// The sample bundle (fixtures/dashboard: absolute URLs everywhere, like the React build) in real
// headless Chromium, through the shipped nginx snippets, with the site root served by a fake
// primary that records everything it receives. Under /ts/ the page must reach only the shadow.
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const SCREENSHOT = resolve('test-results/dashboard-ts.png')
const USER = { username: 'warden', password: 'correct horse battery' }

/** The live tracker's stand-in at the site root: it answers, and remembers, every request and upgrade. */
interface FakePrimary {
  port: number
  received: string[]
  close(): Promise<void>
}

async function startFakePrimary(): Promise<FakePrimary> {
  const received: string[] = []
  const server: Server = createServer((req, res) => {
    received.push(`${req.method} ${req.url}`)
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>the LIVE tracker</html>')
  })
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    received.push(`UPGRADE ${req.url}`)
    wss.handleUpgrade(req, socket, head, (ws) => ws.send('{"type":"chat","character_name":"LIVE"}'))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as AddressInfo).port,
    received,
    async close() {
      for (const ws of wss.clients) ws.terminate()
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    },
  }
}

let primary: FakePrimary
let tracker: RunningTracker
let nginx: RunningNginx
let browser: Browser
let plugin: WebSocket
/** Every request and WebSocket the pages made, as full URLs. */
const requested: string[] = []
const sockets: string[] = []

beforeAll(async () => {
  primary = await startFakePrimary()
  tracker = await startTracker({
    staticDir: 'fixtures/dashboard',
    basePath: '/ts',
    buildVersion: '2026.12.4.2100-abc1234',
    liveCacheMs: 200,
  })
  await createUser(tracker.tracker.db, USER)
  plugin = await connectPlugin(tracker.wsUrl)
  await sendFrames(tracker.url, plugin, [
    telemetry('Larsson', { kills: 12 }),
    telemetry('Alpha', { kills: 3, vt_state: 'Idle' }),
  ])
  await tracker.tracker.settle()
  nginx = await startNginx({
    shadowPort: new URL(tracker.url).port,
    switchedOn: true,
    // The live site's own root, as in production: anything not below /ts/ goes to the primary.
    server: `location / {
      proxy_pass http://127.0.0.1:${primary.port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
    }`,
  })
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
}, 120_000)

afterAll(async () => {
  await browser?.close()
  plugin?.close()
  await nginx?.close()
  await tracker?.close()
  await primary?.close()
})

async function newPage(): Promise<Page> {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.on('request', (r) => requested.push(r.url()))
  page.on('websocket', (ws) => sockets.push(ws.url()))
  return page
}

const text = (page: Page, selector: string) => page.locator(selector).textContent()
// Browser-side code goes as source text: the tests are type-checked without the DOM library.
const waitForText = (page: Page, selector: string, pattern: RegExp) =>
  page.waitForFunction(
    `${pattern}.test(document.querySelector(${JSON.stringify(selector)})?.textContent ?? '')`,
  )

describe('the unchanged dashboard under /ts/ through nginx', () => {
  it('logs in, shows the shadow’s players and live messages, and never reaches the primary', async () => {
    const page = await newPage()
    await page.goto(`${nginx.url}/ts/`)
    await page.waitForSelector('form#login')
    expect(await text(page, '#version')).toBe('v2026.12.4.2100-abc1234')

    // A wrong password is the shadow's 401, shown by the page.
    await page.fill('input[name=username]', USER.username)
    await page.fill('input[name=password]', 'wrong')
    await page.click('button[type=submit]')
    await waitForText(page, '#login-error', /Invalid username or password/)

    await page.fill('input[name=username]', USER.username)
    await page.fill('input[name=password]', USER.password)
    await page.click('button[type=submit]')
    await waitForText(page, '#user', /Signed in as warden/)
    await waitForText(page, '#players', /Larsson/)
    expect(await page.locator('tr.player td:first-child').allTextContents()).toEqual(['Alpha', 'Larsson'])

    await waitForText(page, '#feed', /connected/)
    await sendFrames(tracker.url, plugin, [
      { type: 'chat', character_name: 'Larsson', text: 'hello', timestamp: new Date().toISOString() },
      telemetry('Alpha', { kills: 4 }),
      { type: 'rare', character_name: 'Alpha', name: 'Pyreal Ingot', ew: 1, ns: 2, z: 0 },
    ])
    await waitForText(page, '#feed', /live: 3 messages, last from Alpha \(rare\)/)
    // The next poll of the bare /live route shows the new telemetry (kills 3 -> 4).
    await waitForText(page, '#players', /Alpha4/)

    // A client route is pushed below /ts/, and a reload of it is the shadow's SPA fallback.
    await page.click('tr.player a >> text=Larsson')
    expect(new URL(page.url()).pathname).toBe('/ts/player/Larsson')
    await page.reload()
    await waitForText(page, '#selected', /Selected: Larsson/)
    await waitForText(page, '#players', /Larsson/)
    await waitForText(page, '#feed', /connected/)
    await sendFrames(tracker.url, plugin, [
      { type: 'chat', character_name: 'Larsson', text: 'back', timestamp: new Date().toISOString() },
    ])
    await waitForText(page, '#feed', /live: 1 message, last from Larsson \(chat\)/)

    mkdirSync(resolve('test-results'), { recursive: true })
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    console.info(`dashboard under /ts/: screenshot at ${SCREENSHOT}`)

    // What the inline script covers beyond what the sample app uses, in a real browser.
    const urls = await page.evaluate<string[]>(`(async () => {
      const xhr = new XMLHttpRequest()
      xhr.open('GET', '/api-version')
      xhr.send()
      await new Promise((r) => xhr.addEventListener('loadend', r))
      const events = new EventSource('/health')
      events.close()
      const img = document.createElement('img')
      img.setAttribute('src', '/assets/icon.svg')
      const link = document.createElement('link')
      link.rel = 'stylesheet'
      link.href = '/assets/app.css'
      document.head.append(link)
      const ws = new WebSocket('wss://' + location.host + '/ws/live')
      ws.close()
      return [xhr.responseURL, events.url, img.src, link.href, ws.url, String(new URL('/x', location.href))]
    })()`)
    const origin = nginx.url
    expect(urls).toEqual([
      `${origin}/ts/api-version`,
      `${origin}/ts/health`,
      `${origin}/ts/assets/icon.svg`,
      `${origin}/ts/assets/app.css`,
      `${origin.replace('http:', 'wss:')}/ts/ws/live`,
      `${origin}/x`,
    ])
    await page.context().close()
  }, 60_000)

  it('logs in by a native form post too (303 back to /ts/)', async () => {
    const page = await newPage()
    await page.goto(`${nginx.url}/ts/?native=1`)
    await page.waitForSelector('form#login')
    await page.fill('input[name=username]', USER.username)
    await page.fill('input[name=password]', USER.password)
    await Promise.all([page.waitForURL(`${nginx.url}/ts/`), page.click('button[type=submit]')])
    await waitForText(page, '#user', /Signed in as warden/)
    await waitForText(page, '#players', /Larsson/)
    await page.context().close()
  }, 60_000)

  it('made every request below /ts/ and none to the primary', () => {
    const origin = new URL(nginx.url)
    expect(requested.length).toBeGreaterThan(10)
    const stray = [...requested, ...sockets].filter((u) => {
      const url = new URL(u)
      return url.host !== origin.host || !url.pathname.startsWith('/ts/')
    })
    expect(stray).toEqual([])
    expect(sockets.some((u) => u === `${nginx.url.replace('http:', 'ws:')}/ts/ws/live`)).toBe(true)
    for (const path of ['/ts/me', '/ts/api/live', '/ts/live', '/ts/api-version', '/ts/login'])
      expect(requested.map((u) => new URL(u).pathname)).toContain(path)
    expect(primary.received).toEqual([])
  })
})
