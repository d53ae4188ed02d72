import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CommanderError } from 'commander'
import pino from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { registerCompareCommands } from '../src/cli/commands/compare.ts'
import { buildProgram } from '../src/cli/program.ts'
import { BackendClient, DEFAULT_LIMITS } from '../src/compare/poller.ts'

const silent = pino({ level: 'silent' })

/**
 * A real HTTP server standing in for the primary: it counts the requests in flight (the most it
 * ever saw at once) and when each arrived, and answers every read after `delayMs`.
 */
interface CountingServer {
  url: string
  peakInFlight: number
  /** performance.now() of each request's arrival, logins included. */
  arrivals: number[]
  logins: number
  reset(): void
  close(): Promise<void>
}

async function startCountingServer(
  options: {
    delayMs?: number
    players?: number
    /** What `POST /login` answers: a session cookie, or a refusal. */
    login?: 'ok' | 'refuse'
  } = {},
): Promise<CountingServer> {
  let inFlight = 0
  let sessions = 0
  const state = {
    peakInFlight: 0,
    arrivals: [] as number[],
    logins: 0,
  }
  const live = {
    players: Array.from({ length: options.players ?? 0 }, (_, i) => ({
      character_name: `Char ${String(i).padStart(3, '0')}`,
      kills: i,
    })),
  }
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && req.url === '/login') {
      state.logins += 1
      if (options.login === 'refuse') {
        res.writeHead(401, { 'content-type': 'application/json' })
        return res.end('{"detail":"Invalid credentials"}')
      }
      sessions += 1
      res.writeHead(200, { 'set-cookie': `session=s${sessions}; HttpOnly; Path=/` })
      return res.end('{}')
    }
    if (options.login !== undefined && req.headers.cookie === undefined) {
      res.writeHead(401, { 'content-type': 'application/json' })
      return res.end('{"detail":"Not authenticated"}')
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    if (req.url === '/live') return res.end(JSON.stringify(live))
    if (req.url === '/metrics.json') return res.end('{"frames_received":0,"frames_accepted":0}')
    return res.end(JSON.stringify({ path: req.url }))
  }
  const server = createServer((req, res) => {
    inFlight += 1
    state.peakInFlight = Math.max(state.peakInFlight, inFlight)
    state.arrivals.push(performance.now())
    res.on('close', () => {
      inFlight -= 1
    })
    req.resume()
    req.on('end', () => setTimeout(() => answer(req, res), options.delayMs ?? 10))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    reset() {
      state.peakInFlight = inFlight
      state.arrivals = []
      state.logins = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  })
}

let server: CountingServer
const clients: BackendClient[] = []
const client = (options: Partial<ConstructorParameters<typeof BackendClient>[0]> = {}) => {
  const c = new BackendClient({ side: 'primary', url: server.url, logger: silent, ...options })
  clients.push(c)
  return c
}

beforeAll(async () => {
  server = await startCountingServer()
})
afterAll(async () => {
  await server.close()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  server.reset()
})

describe('BackendClient load limits (issue 9 §5)', () => {
  it('never has more than maxInFlight requests at the server: 200 reads at 4', async () => {
    const c = client({ limits: { maxInFlight: 4, maxRps: Number.POSITIVE_INFINITY } })
    const reads = await Promise.all(Array.from({ length: 200 }, (_, i) => c.get(`/stats/c${i}`)))
    expect(reads.every((r) => r.ok && r.status === 200)).toBe(true)
    expect(server.arrivals).toHaveLength(200)
    expect(server.peakInFlight).toBe(4)
    expect(c.stats()).toMatchObject({ requests: 200, maxInFlight: 4, maxRps: null })
  })

  it('spaces requests at maxRps: 40 reads at 20/s take at least 1.9 s', async () => {
    const c = client({ limits: { maxRps: 20, maxInFlight: 4 } })
    const started = performance.now()
    await Promise.all(Array.from({ length: 40 }, (_, i) => c.get(`/stats/c${i}`)))
    const elapsed = performance.now() - started
    // 40 evenly spaced starts span 39 intervals of 50 ms: a lower bound, so no flakiness.
    expect(elapsed).toBeGreaterThanOrEqual(1900)
    expect(server.arrivals.at(-1)! - server.arrivals[0]!).toBeGreaterThanOrEqual(1900)
    const stats = c.stats()
    expect(stats).toMatchObject({ requests: 40, maxRps: 20, maxInFlight: 4 })
    expect(stats.achievedRps).toBeLessThanOrEqual(20.1)
  })

  it('limits the primary to the safe defaults and the shadow to its own when none are given', () => {
    expect(client().stats()).toEqual({
      requests: 0,
      maxRps: DEFAULT_LIMITS.primary.maxRps,
      maxInFlight: DEFAULT_LIMITS.primary.maxInFlight,
      achievedRps: null,
    })
    expect(client({ side: 'shadow' }).limits).toEqual(DEFAULT_LIMITS.shadow)
    expect(DEFAULT_LIMITS.primary).toEqual({ maxRps: 50, maxInFlight: 4 })
  })

  it('reports the load of a window opened by mark(), apart from what came before', async () => {
    const c = client({ limits: { maxRps: 100 } })
    await Promise.all(Array.from({ length: 5 }, () => c.get('/health')))
    await new Promise((resolve) => setTimeout(resolve, 300))
    const mark = c.mark()
    await Promise.all(Array.from({ length: 11 }, () => c.get('/health')))
    const window = c.stats(mark)
    expect(window.requests).toBe(11)
    // 11 starts at ~100/s, where the lifetime figure is diluted by the idle 300 ms.
    expect(window.achievedRps).toBeLessThanOrEqual(110)
    expect(window.achievedRps).toBeGreaterThan(c.stats().achievedRps!)
    expect(c.stats().requests).toBe(16)
  })

  it('refuses limits that would stop every read', () => {
    expect(() => client({ limits: { maxRps: 0 } })).toThrow(/maxRps/)
    expect(() => client({ limits: { maxInFlight: 0.5 } })).toThrow(/maxInFlight/)
  })
})

describe('BackendClient.authHeaders', () => {
  it('is empty under internal trust and the given cookie under cookie auth', async () => {
    expect(await client().authHeaders()).toEqual({})
    expect(await client({ auth: { kind: 'cookie', cookie: 'session=abc' } }).authHeaders()).toEqual({
      cookie: 'session=abc',
    })
    expect(server.arrivals).toHaveLength(0)
  })

  it('logs in once, whoever asks first, and hands the WebSocket the same cookie the reads use', async () => {
    const backend = await startCountingServer({ login: 'ok' })
    try {
      const c = new BackendClient({
        side: 'primary',
        url: backend.url,
        logger: silent,
        auth: { kind: 'login', username: 'harness', password: 'pw' },
      })
      clients.push(c)
      const [headers, ...reads] = await Promise.all([
        c.authHeaders(),
        ...Array.from({ length: 8 }, () => c.get('/live')),
      ])
      expect(headers).toEqual({ cookie: 'session=s1' })
      expect(reads.every((r) => r.ok && r.status === 200)).toBe(true)
      expect(backend.logins).toBe(1)
      // The login went through the limiter like any request.
      expect(c.stats().requests).toBe(9)
    } finally {
      await backend.close()
    }
  })

  it('does not retry a refused login: a wrong password never turns into a stream of bcrypt work', async () => {
    const backend = await startCountingServer({ login: 'refuse' })
    try {
      const c = new BackendClient({
        side: 'primary',
        url: backend.url,
        logger: silent,
        auth: { kind: 'login', username: 'harness', password: 'wrong' },
      })
      clients.push(c)
      await expect(c.authHeaders()).rejects.toMatchObject({ code: 'CMP_ERR_BACKEND' })
      const reads = await Promise.all(Array.from({ length: 10 }, () => c.get('/live')))
      expect(reads.every((r) => !r.ok && r.code === 'CMP_ERR_BACKEND')).toBe(true)
      expect(backend.logins).toBe(1)
    } finally {
      await backend.close()
    }
  })
})

/** Runs the CLI; resolves the exit code and the printed lines. */
async function cli(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = []
  const program = buildProgram({ env: {}, logger: silent, out: (l) => out.push(l) }, [
    registerCompareCommands,
  ])
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} })
  for (const c of program.commands) {
    c.exitOverride()
    c.configureOutput({ writeErr: () => {}, writeOut: () => {} })
  }
  try {
    await program.parseAsync(args, { from: 'user' })
    return { code: 0, out }
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode, out }
    throw err
  }
}

describe('overlord-ts sweep --primary-max-in-flight / --primary-max-rps', () => {
  it('holds the primary to the limits given on the command line', async () => {
    const primary = await startCountingServer({ players: 30 })
    const shadow = await startCountingServer({ players: 30 })
    const dir = await mkdtemp(join(tmpdir(), 'overlord-load-'))
    try {
      const { code } = await cli([
        'sweep',
        '--primary',
        primary.url,
        '--shadow',
        shadow.url,
        '--reports',
        dir,
        '--concurrency',
        '8',
        '--primary-max-in-flight',
        '2',
        '--primary-max-rps',
        '0',
        '--shadow-max-in-flight',
        '1',
        // These servers have no /ws/live: only the HTTP reads are under test.
        '--no-ws-live',
      ])
      expect(code).toBe(0)
      // /live, 12 other shared routes and 3 × 30 per-character ones, each read twice on the primary.
      expect(primary.arrivals.length).toBeGreaterThan(200)
      expect(primary.peakInFlight).toBe(2)
      expect(shadow.peakInFlight).toBe(1)
    } finally {
      await Promise.all([primary.close(), shadow.close(), rm(dir, { recursive: true, force: true })])
    }
  })

  it('refuses a limit that is not a number before reading either backend', async () => {
    await expect(
      cli(['sweep', '--primary', server.url, '--shadow', server.url, '--primary-max-in-flight', 'four']),
    ).rejects.toMatchObject({ code: 'CMP_ERR_RULES' })
    await expect(
      cli(['sweep', '--primary', server.url, '--shadow', server.url, '--primary-max-rps', '-5']),
    ).rejects.toMatchObject({ code: 'CMP_ERR_RULES' })
    expect(server.arrivals).toHaveLength(0)
  })
})
