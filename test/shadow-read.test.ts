import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { evaluateGate, parseCriteria } from '../src/compare/gate.ts'
import { readLedger, readShadowReadWindow, recordShadowRead, recordSweep } from '../src/compare/ledger.ts'
import { writeReports } from '../src/compare/report.ts'
import type { ShadowReadRoute, ShadowReadWindow } from '../src/compare/ledger.ts'
import { createUser } from '../src/db/users.ts'
import {
  buildShadowReadProxy,
  type ShadowReadOptions,
  type ShadowReadProxy,
} from '../src/shadow-read/proxy.ts'
import { Sessions } from '../src/tracker/sessions.ts'
import {
  frame,
  type Pair,
  projectManifest,
  projectRules,
  silent,
  startPair,
  startRewritingProxy,
  sweepOnce,
} from './compare-helpers.ts'
import { overlord } from './support/cli.ts'
import { connectBrowser } from './support/tracker.ts'
import { freePort, waitFor } from './support/ws-sink.ts'

/**
 * Issue 10 §1 on real trackers and real HTTP: users read through `shadow-read`, get the primary's
 * answer untouched, and their GETs are mirrored to the shadow and judged by the comparison engine.
 */

const KEY = 'shadow-read-secret-key'
const USER = 'viewer'
/** As nginx forwards a user's request: their address in X-Forwarded-For. */
const USER_ADDRESS = '203.0.113.7'
const CHARACTERS = ['Aerfalle', 'Bael Zharon', 'Elysa']
const HOP_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'date']

let pair: Pair
let cookie: string
const t0 = Date.now() - 60_000

beforeAll(async () => {
  // Both trackers know the user and share SECRET_KEY (CONTRACT.md §5): a cookie minted by one is
  // good on the other, as the Python tracker's is on the shadow. The /live caches refresh only when
  // the test settles them, so two reads of the same URL are comparable.
  const common = { sessions: { secretKey: KEY }, liveCacheMs: 24 * 3_600_000 }
  pair = await startPair(common, common)
  for (const side of [pair.primary, pair.shadow]) {
    await createUser(side.tracker.db, { username: USER, password: 'viewer-pw' })
  }
  cookie = `session=${new Sessions({ secretKey: KEY }).mint(USER, Date.now())}`
  await pair.feed(CHARACTERS.map((c, i) => frame(c, new Date(t0 + i * 100), { kills: 10 + i })))
}, 60_000)
afterAll(() => pair.close())

interface Recorded {
  method: string
  url: string
  headers: IncomingHttpHeaders
  upgrade: boolean
}

/**
 * A real HTTP front of the shadow that records each request, then forwards it (headers and all),
 * once `gate` lets it: a shadow that answers late.
 */
async function recordingFront(
  upstream: string,
  gate: () => Promise<void> = async () => {},
): Promise<{ url: string; seen: Recorded[]; answered: () => number; close(): Promise<void> }> {
  const seen: Recorded[] = []
  let answered = 0
  const server = createServer(async (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: false })
    await gate()
    try {
      const { host: _host, connection: _c, ...headers } = req.headers
      const up = await request(`${upstream}${req.url}`, {
        method: 'GET',
        headers: headers as Record<string, string>,
      })
      res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? '') })
      res.end(Buffer.from(await up.body.arrayBuffer()))
      answered += 1
    } catch {
      res.writeHead(502)
      res.end()
    }
  })
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: true })
    socket.destroy()
  })
  return { url: await listen(server), seen, answered: () => answered, close: () => closeServer(server) }
}

async function listen(server: Server | net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function closeServer(server: Server | net.Server): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

async function startProxy(
  shadowUrl: string,
  options: Partial<ShadowReadOptions> = {},
): Promise<{ proxy: ShadowReadProxy; url: string }> {
  const proxy = buildShadowReadProxy({
    primaryUrl: pair.primary.url,
    shadowUrl,
    rules: await projectRules(),
    manifest: await projectManifest(),
    logger: silent,
    ...options,
  })
  return { proxy, url: await proxy.listen(0) }
}

/** A user's request as nginx forwards it: their cookie and their address. */
async function userGet(base: string, path: string, init: { method?: string; body?: string } = {}) {
  const res = await request(`${base}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { cookie, 'x-forwarded-for': USER_ADDRESS, 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: init.body }),
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  const headers = Object.fromEntries(
    Object.entries(res.headers).filter(([k]) => !HOP_HEADERS.includes(k.toLowerCase())),
  )
  return { status: res.statusCode, headers, body: body.toString('utf8') }
}

const routeOf = (w: ShadowReadWindow, name: string): ShadowReadRoute & { examples: unknown[] } => {
  const r = w.routes.find((x) => x.route === name)
  if (r === undefined) throw new Error(`no route ${name} in ${w.routes.map((x) => x.route).join(', ')}`)
  return r
}

describe('shadow-read: the user is answered by the primary, untouched', () => {
  it('returns the primary’s exact status, headers and bytes; the shadow gets the same GET with the user’s cookie', async () => {
    const front = await recordingFront(pair.shadow.url)
    const { proxy, url } = await startProxy(front.url)
    try {
      const paths = [
        '/live',
        '/stats/Bael%20Zharon',
        '/stats/Nobody',
        '/trails?seconds=600',
        '/me',
        '/api-version',
      ]
      for (const path of paths) {
        const direct = await userGet(pair.primary.url, path)
        const through = await userGet(url, path)
        expect({ path, ...through }).toEqual({ path, ...direct })
      }
      expect((await userGet(url, '/stats/Nobody')).status).toBe(404)
      const login = await userGet(url, '/login', {
        method: 'POST',
        body: '{"username":"viewer","password":"no"}',
      })
      expect(login.status).toBe(401)
      await proxy.idle()

      const mirrored = front.seen.map((s) => `${s.method} ${s.url}`)
      expect(mirrored).toEqual(
        expect.arrayContaining(['GET /live', 'GET /stats/Bael%20Zharon', 'GET /trails?seconds=600']),
      )
      // /me is not an API endpoint of the catalog; POST is never mirrored.
      expect(mirrored.filter((m) => m.includes('/me') || m.startsWith('POST'))).toEqual([])
      for (const s of front.seen) {
        expect(s.headers.cookie).toBe(cookie)
        // Forwarded, so the shadow never grants internal trust (CONTRACT.md §5).
        expect(s.headers['x-forwarded-for']).toBe(`${USER_ADDRESS}, 127.0.0.1`)
      }

      const w = proxy.takeWindow()
      expect(routeOf(w, 'live')).toMatchObject({
        requests: 1,
        mirrored: 1,
        compared: 1,
        clean: 1,
        mismatched: 0,
      })
      expect(routeOf(w, 'stats')).toMatchObject({ requests: 3, compared: 3, clean: 3 })
      expect(routeOf(w, '/me').notCompared).toEqual({ 'no-endpoint': 1 })
      expect(routeOf(w, '/login').notCompared).toEqual({ method: 1 })
      expect(w.mismatched).toBe(0)
    } finally {
      await proxy.close()
      await front.close()
    }
  })
})

describe('shadow-read: users’ reads are judged by the comparison engine', () => {
  it('identical backends: a clean window, with per-route volume', async () => {
    const { proxy, url } = await startProxy(pair.shadow.url)
    try {
      for (let i = 0; i < 3; i++) await userGet(url, '/live')
      for (const c of CHARACTERS) await userGet(url, `/stats/${encodeURIComponent(c)}`)
      for (const path of ['/trails?seconds=600', '/total-kills', '/character-stats/list', '/index.html']) {
        await userGet(url, path)
      }
      await proxy.idle()
      const w = proxy.takeWindow()
      expect(w.mismatched).toBe(0)
      expect(w.compared).toBe(w.clean)
      expect(routeOf(w, 'live')).toMatchObject({ requests: 3, mirrored: 3, compared: 3, clean: 3 })
      expect(routeOf(w, 'stats')).toMatchObject({ requests: 3, compared: 3, clean: 3 })
      for (const r of ['trails', 'total-kills', 'character-stats-list']) {
        expect(routeOf(w, r)).toMatchObject({ requests: 1, compared: 1, clean: 1 })
      }
      expect(routeOf(w, '/index.html')).toMatchObject({
        requests: 1,
        mirrored: 0,
        notCompared: { 'no-endpoint': 1 },
      })
    } finally {
      await proxy.close()
    }
  })

  it('a divergent shadow: a mismatch on that route, with an example, in the ledger and the report', async () => {
    const diverging = await startRewritingProxy(pair.shadow.url, (path, body) => {
      if (path === '/live') for (const p of body.players) p.kills += 1
      return body
    })
    const dir = await mkdtemp(join(tmpdir(), 'shadow-read-'))
    const { proxy, url } = await startProxy(diverging.url)
    try {
      await userGet(url, '/live')
      await userGet(url, '/total-kills')
      await proxy.idle()
      const w = proxy.takeWindow()
      expect(routeOf(w, 'live')).toMatchObject({ compared: 1, mismatched: 1, clean: 0 })
      expect(routeOf(w, 'live').clusters).toEqual([
        { signature: 'body.players[].kills', class: 'value', status: 'mismatch', count: CHARACTERS.length },
      ])
      expect(routeOf(w, 'total-kills')).toMatchObject({ compared: 1, clean: 1 })
      await recordShadowRead(dir, w)

      const { entries, shadowReads } = await readLedger(dir)
      expect(entries).toEqual([])
      expect(shadowReads.map((e) => e.id)).toEqual([w.id])
      const saved = await readShadowReadWindow(dir, w.id)
      expect(routeOf(saved!, 'live').examples).toEqual([
        expect.objectContaining({
          url: '/live',
          path: 'body.players[Aerfalle].kills',
          signature: 'body.players[].kills',
          primary: 10,
          shadow: 11,
        }),
      ])
      await writeReports(dir)
      const md = await readFile(join(dir, 'report.md'), 'utf8')
      expect(md).toContain('## User reads (shadow-read)')
      expect(md).toMatch(/\| live \| 1 \| 1 \| 0 \| 0 % \|/)
      expect(md).toContain('`body.players[Aerfalle].kills`')
      const html = await readFile(join(dir, 'report.html'), 'utf8')
      expect(html).toContain('id="user-reads"')
      expect(html).toContain('body.players[Aerfalle].kills')
    } finally {
      await proxy.close()
      await diverging.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a shadow a frame behind: explained as lag, not a mismatch', async () => {
    const { proxy, url } = await startProxy(pair.shadow.url)
    try {
      // Both at frame 1; a user reads (the primary's answer joins the history).
      await userGet(url, '/live')
      await userGet(url, '/stats/Elysa')
      // Frame 2 reaches the primary only: the shadow is one frame behind.
      await pair.feed([frame('Elysa', new Date(t0 + 5_000), { kills: 40, ew: 99.5 })], 'primary')
      const live = await userGet(url, '/live')
      expect(live.body).toContain('"ew":99.5')
      await userGet(url, '/stats/Elysa')
      await proxy.idle()
      const w = proxy.takeWindow()
      expect(routeOf(w, 'live')).toMatchObject({ compared: 2, clean: 2, mismatched: 0, lagExplained: 1 })
      expect(routeOf(w, 'stats')).toMatchObject({ compared: 2, clean: 2, mismatched: 0, lagExplained: 1 })
      expect(w.lag.behind).toBeGreaterThan(0)
      // The shadow catches up: clean again, at the same frame.
      await pair.feed([frame('Elysa', new Date(t0 + 5_000), { kills: 40, ew: 99.5 })], 'shadow')
      await userGet(url, '/live')
      await proxy.idle()
      expect(routeOf(proxy.takeWindow(), 'live')).toMatchObject({ compared: 1, clean: 1, lagExplained: 0 })
    } finally {
      await proxy.close()
    }
  })

  it('a shadow that answered after a frame landed is bracketed by the next read, as in the sweep: explained', async () => {
    const { promise: held, resolve: release } = Promise.withResolvers<void>()
    const front = await recordingFront(pair.shadow.url, () => held)
    const { proxy, url } = await startProxy(front.url)
    try {
      const before = JSON.parse((await userGet(url, '/total-kills')).body).total as number
      // Kills land on both trackers while the shadow's read of the same instant is still on its way.
      await pair.feed([frame('Aerfalle', new Date(t0 + 9_000), { kills: 500 })])
      release()
      await waitFor('the late shadow answer', () => front.answered() === 1)
      // Users keep polling: the first read that starts after the shadow answered is the sweep's
      // second read for that pair.
      let after = before
      for (let i = 0; i < 10; i++) {
        after = JSON.parse((await userGet(url, '/total-kills')).body).total as number
        await sleep(100)
      }
      expect(after).toBeGreaterThan(before)
      await proxy.idle()
      const w = proxy.takeWindow()
      expect(routeOf(w, 'total-kills')).toMatchObject({ compared: 11, clean: 11, mismatched: 0 })
      expect(routeOf(w, 'total-kills').lagExplained).toBeGreaterThanOrEqual(1)
    } finally {
      await proxy.close()
      await front.close()
    }
  })
})

/** A shadow that accepts connections and never answers. */
async function stalledShadow() {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
  })
  const url = await listen(server)
  return {
    url,
    close: () => {
      for (const s of sockets) s.destroy()
      return closeServer(server)
    },
  }
}

/** A shadow that resets every connection as soon as a request arrives. */
async function resettingShadow() {
  const server = net.createServer((s) => {
    s.on('error', () => {})
    s.once('data', () => s.resetAndDestroy())
  })
  return { url: await listen(server), close: () => closeServer(server) }
}

/** A shadow that answers every request 503. */
async function failingShadow() {
  const server = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' })
    res.end('{"detail":"down for maintenance"}')
  })
  return { url: await listen(server), close: () => closeServer(server) }
}

describe('shadow-read: a slow, dead or refusing shadow costs the user nothing', () => {
  const cases = [
    [
      'down (port closed)',
      async () => ({ url: `http://127.0.0.1:${await freePort()}`, close: async () => {} }),
      'refused',
    ],
    ['stalled (accepts, never answers)', stalledShadow, 'timeout'],
    ['refusing (resets the connection)', resettingShadow, 'reset'],
    ['failing (503 to everything)', failingShadow, 'status-5xx'],
  ] as const
  for (const [what, start, kind] of cases) {
    it(`${what}: every user answer is the primary’s; the failures are counted as ${kind}`, async () => {
      const shadow = await start()
      const { proxy, url } = await startProxy(shadow.url, { shadowTimeoutMs: 300 })
      try {
        for (const path of ['/live', '/stats/Aerfalle', '/total-rares']) {
          const direct = await userGet(pair.primary.url, path)
          expect({ path, ...(await userGet(url, path)) }).toEqual({ path, ...direct })
        }
        await proxy.idle(5_000)
        const w = proxy.takeWindow()
        expect(w.compared).toBe(0)
        for (const r of ['live', 'stats', 'total-rares']) {
          expect(routeOf(w, r)).toMatchObject({ requests: 1, mirrored: 1, shadowErrors: { [kind]: 1 } })
        }
      } finally {
        await proxy.close()
        await shadow.close()
      }
    })
  }

  it('a primary that cannot be reached answers 502, as nginx would; nothing is compared', async () => {
    const { proxy, url } = await startProxy(pair.shadow.url, {
      primaryUrl: `http://127.0.0.1:${await freePort()}`,
    })
    try {
      const answer = await userGet(url, '/live')
      expect({ status: answer.status, body: JSON.parse(answer.body) }).toEqual({
        status: 502,
        body: { detail: 'primary not reachable' },
      })
      await proxy.idle()
      expect(routeOf(proxy.takeWindow(), 'live')).toMatchObject({
        requests: 1,
        compared: 0,
        primaryUncomparable: 1,
      })
    } finally {
      await proxy.close()
    }
  })

  it('a dead shadow is no longer tried after ten failures in a row: the rest are counted unavailable', async () => {
    const { proxy, url } = await startProxy(`http://127.0.0.1:${await freePort()}`)
    try {
      for (let i = 0; i < 10; i++) await userGet(url, '/total-kills')
      await proxy.idle()
      for (let i = 0; i < 20; i++) expect((await userGet(url, '/total-kills')).status).toBe(200)
      await proxy.idle()
      expect(routeOf(proxy.takeWindow(), 'total-kills')).toMatchObject({
        requests: 30,
        mirrored: 10,
        shadowErrors: { refused: 10, unavailable: 20 },
      })
    } finally {
      await proxy.close()
    }
  })

  it('a full queue drops the mirror and counts it; the user never waits for it', async () => {
    // The shadow holds every answer until released: were the proxy waiting on it, no user read
    // below would be answered.
    const { promise: held, resolve: release } = Promise.withResolvers<void>()
    const front = await recordingFront(pair.shadow.url, () => held)
    const { proxy, url } = await startProxy(front.url, { concurrency: 1, queue: 2, shadowTimeoutMs: 30_000 })
    try {
      for (let i = 0; i < 10; i++) expect((await userGet(url, '/total-kills')).status).toBe(200)
      await waitFor('the one mirror sent', () => front.seen.length === 1)
      release()
      await proxy.idle(10_000)
      expect(routeOf(proxy.takeWindow(), 'total-kills')).toMatchObject({
        requests: 10,
        mirrored: 3,
        dropped: { queue: 7, judge: 0 },
        compared: 3,
      })
    } finally {
      await proxy.close()
      await front.close()
    }
  })
})

describe('shadow-read: what is not mirrored', () => {
  it('sample 0 mirrors nothing', async () => {
    const front = await recordingFront(pair.shadow.url)
    const { proxy, url } = await startProxy(front.url, { sample: 0 })
    try {
      for (const path of ['/live', '/stats/Elysa', '/total-kills']) await userGet(url, path)
      await proxy.idle()
      expect(front.seen).toEqual([])
      const w = proxy.takeWindow()
      expect(w.compared).toBe(0)
      expect(routeOf(w, 'live')).toMatchObject({ requests: 1, sampledOut: 1, mirrored: 0 })
    } finally {
      await proxy.close()
      await front.close()
    }
  })

  it('a sampling rate mirrors that share of reads', async () => {
    const draws = [0.1, 0.9, 0.4, 0.6]
    const { proxy, url } = await startProxy(pair.shadow.url, {
      sample: 0.5,
      random: () => draws.shift() ?? 1,
    })
    try {
      for (let i = 0; i < 4; i++) await userGet(url, '/total-kills')
      await proxy.idle()
      expect(routeOf(proxy.takeWindow(), 'total-kills')).toMatchObject({
        mirrored: 2,
        sampledOut: 2,
        compared: 2,
      })
    } finally {
      await proxy.close()
    }
  })

  it('/ws/live upgrades pass through to the primary and are not mirrored', async () => {
    const front = await recordingFront(pair.shadow.url)
    const { proxy, url } = await startProxy(front.url)
    try {
      const browser = await connectBrowser(url.replace('http', 'ws'), {
        cookie,
        'x-forwarded-for': USER_ADDRESS,
      })
      await pair.feed([{ type: 'chat', character_name: 'Elysa', text: 'through the proxy' }], 'primary')
      await browser.waitFor((m) => m.text === 'through the proxy')
      browser.ws.close()
      expect(front.seen).toEqual([])
      const w = proxy.takeWindow()
      expect(routeOf(w, '/ws/*')).toMatchObject({ requests: 1, mirrored: 0, notCompared: { upgrade: 1 } })
    } finally {
      await proxy.close()
      await front.close()
    }
  })
})

describe('shadow-read lines in the ledger', () => {
  it('leave the gate’s sweep counts and the latest sweep of the report as they were', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shadow-read-gate-'))
    try {
      await recordSweep(dir, await sweepOnce(pair.primary.url, pair.shadow.url))
      const criteria = parseCriteria({ minSweeps: 1, requireDatabase: false })
      const before = evaluateGate((await readLedger(dir)).entries, [], criteria, Date.now())

      const diverging = await startRewritingProxy(pair.shadow.url, (path, body) => {
        if (path === '/total-kills') body.total += 1
        return body
      })
      const { proxy, url } = await startProxy(diverging.url)
      try {
        await userGet(url, '/total-kills')
        await proxy.idle()
        await recordShadowRead(dir, proxy.takeWindow())
        await recordShadowRead(dir, proxy.takeWindow())
      } finally {
        await proxy.close()
        await diverging.close()
      }

      const { entries, shadowReads } = await readLedger(dir)
      expect(entries).toHaveLength(1)
      expect(shadowReads).toHaveLength(2)
      const after = evaluateGate(entries, [], criteria, Date.now())
      expect(after.criteria).toEqual(before.criteria)
      expect(after.go).toBe(before.go)

      await writeReports(dir)
      const md = await readFile(join(dir, 'report.md'), 'utf8')
      expect(md).toContain(`## Latest sweep ${entries[0]!.id}`)
      expect(md).toContain('Generated')
      expect(md).toMatch(/from 1 sweeps/)
      expect(md).toMatch(/\| total-kills \| 1 \| 1 \| 0 \| 0 % \|/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('overlord-ts shadow-read (the real CLI)', () => {
  it('refuses bad options with one line and exit 2', async () => {
    for (const [args, line] of [
      [['--sample', '1.5'], /--sample 1\.5: use a share between 0 and 1/],
      [['--concurrency', '0'], /--concurrency 0: use a whole number of at least 1/],
      [['--queue', '-1'], /--queue -1: use a whole number of at least 0/],
      [['--shadow-timeout', 'soon'], /bad duration: soon/],
      [['--primary', 'not a url'], /--primary not a url: not an http\(s\) URL/],
      [['--listen', 'localhost:99999'], /bad listen address/],
    ] as const) {
      const run = await overlord(['shadow-read', ...args])
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stderr).toHaveLength(1)
      expect(run.stderr[0]).toMatch(line)
    }
  })

  it('says which port is taken', async () => {
    const busy = net.createServer()
    const port = Number(new URL(await listen(busy)).port)
    try {
      const run = await overlord(['shadow-read', '--listen', `127.0.0.1:${port}`])
      expect(run.code).toBe(2)
      expect(run.stderr).toEqual([`overlord-ts: port ${port} on 127.0.0.1 is already in use (--listen)`])
    } finally {
      await closeServer(busy)
    }
  })

  it('serves, then on SIGTERM flushes the window to the ledger and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shadow-read-cli-'))
    const port = await freePort()
    const child = spawn(
      process.execPath,
      [
        'src/cli/main.ts',
        'shadow-read',
        '--listen',
        `127.0.0.1:${port}`,
        '--primary',
        pair.primary.url,
        '--shadow',
        pair.shadow.url,
        '--reports',
        dir,
        '--window',
        '1h',
      ],
      { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d
    })
    try {
      await waitFor('shadow-read listening', () => stdout.includes('shadow-read listening'))
      const url = `http://127.0.0.1:${port}`
      expect((await userGet(url, '/live')).status).toBe(200)
      expect((await userGet(url, '/stats/Elysa')).status).toBe(200)
      child.kill('SIGTERM')
      const [code] = (await once(child, 'exit')) as [number | null]
      expect(code).toBe(0)
      const { shadowReads } = await readLedger(dir)
      expect(shadowReads).toHaveLength(1)
      expect(shadowReads[0]).toMatchObject({ kind: 'shadow-read', requests: 2, compared: 2, clean: 2 })
      const logs = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(logs.some((l) => l.msg === 'shadow-read window' && l.requests === 2)).toBe(true)
    } finally {
      child.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    }
  })
})
