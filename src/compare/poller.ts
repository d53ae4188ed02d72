import PQueue from 'p-queue'
import type { Logger } from 'pino'
import { Pool } from 'undici'
import { coerceError, ERR, OverlordError } from '../protocol/errors.ts'

/** How the harness proves who it is to a backend (CONTRACT.md §5). */
export type BackendAuth =
  /** Internal trust: loopback or private peer with no forwarding header (nothing to send). */
  | { kind: 'trust' }
  /** A session cookie minted elsewhere, as `name=value`. */
  | { kind: 'cookie'; cookie: string }
  /** `POST /login`, then the `Set-Cookie` it returns; logs in again once on a 401. */
  | { kind: 'login'; username: string; password: string; loginPath?: string }

/** How hard the harness may read one backend (issue 9 §5). */
export interface LoadLimits {
  /** Requests started per second, spread over the second; `Infinity` for no limit. */
  maxRps: number
  /** Requests sent and not yet answered, at most; `Infinity` for no limit. */
  maxInFlight: number
}

/**
 * The limits of each side when none are given (issue 9 §5).
 *
 * The primary is the live Python tracker: one uvicorn worker, so one asyncio loop on one core that
 * also takes every plugin frame and fans it out to the browsers. Each read runs on that loop between
 * frames, and a frame that arrives meanwhile waits for it.
 * - 4 in flight: at most four reads are queued on that loop ahead of a frame, instead of the sweep's
 *   whole concurrency (16).
 * - 50 per second: a per-character read is a database query plus `json.dumps` there, an estimated
 *   1-3 ms of the loop (0.15-0.3 ms in the in-memory stand-in of bench/primary-load.ts), so 5-15 % of
 *   the one core at most. A 1 000-character sweep (6 000 primary reads) then takes ~2.5 minutes, and
 *   send→browser p99 while it runs stays that of no sweep (bench/README.md, primary-load).
 * Neither bounds what one read costs: a sweep's `/trails` is one read however large it is.
 *
 * The shadow is the TypeScript tracker, which serves ~11 000 reads/s (bench/README.md, auth): its
 * limits only stop a runaway loop.
 */
export const DEFAULT_LIMITS: Readonly<Record<'primary' | 'shadow', LoadLimits>> = {
  primary: { maxRps: 50, maxInFlight: 4 },
  shadow: { maxRps: 500, maxInFlight: 16 },
}

export interface BackendOptions {
  /** `primary` or `shadow`: how it appears in reports, and which {@link DEFAULT_LIMITS} apply. */
  side: 'primary' | 'shadow'
  url: string
  auth?: BackendAuth
  logger: Logger
  /** Overrides {@link DEFAULT_LIMITS} for this side, field by field. */
  limits?: Partial<LoadLimits>
  /** Keep-alive connections to this backend (default: `maxInFlight`, or 16 without a limit). */
  connections?: number
  timeoutMs?: number
}

/** One read: the status and parsed body, or why there was none. */
export type ReadResult =
  | { ok: true; status: number; body: unknown; startedAt: number; ms: number }
  | { ok: false; code: string; message: string; startedAt: number; ms: number }

/** The load a client put on its backend, for the sweep result. */
export interface BackendLoad {
  /** HTTP requests sent (logins included). */
  requests: number
  /** The limits in force; `null` for none. */
  maxRps: number | null
  maxInFlight: number | null
  /** Requests started per second between the first and the last start; `null` under two requests. */
  achievedRps: number | null
}

/** Where a load window starts (see {@link BackendClient.stats}). */
export interface LoadMark {
  readonly requests: number
  /** Filled in when the first request after the mark starts. */
  firstStartAt: number | undefined
}

/**
 * Rate-limit ticks per second at most. Each tick waits on a timer that fires late (more so on a busy
 * machine), and a start per tick fell ~10 % short of the limit; a few starts per tick (3 per 60 ms
 * at 50/s) keep the spacing and lose less. Either way the limit is never exceeded.
 */
const MAX_TICKS_PER_SECOND = 20

function checkLimits(side: string, limits: LoadLimits): LoadLimits {
  const { maxRps, maxInFlight } = limits
  if (!(maxRps > 0)) {
    throw new OverlordError(ERR.CMP_RULES, `${side}: maxRps must be above 0 (Infinity for no limit)`)
  }
  if (!(maxInFlight >= 1) || (Number.isFinite(maxInFlight) && !Number.isInteger(maxInFlight))) {
    throw new OverlordError(
      ERR.CMP_RULES,
      `${side}: maxInFlight must be an integer of at least 1 (Infinity for no limit)`,
    )
  }
  return limits
}

function queueFor(limits: LoadLimits): PQueue {
  if (!Number.isFinite(limits.maxRps)) return new PQueue({ concurrency: limits.maxInFlight })
  // A sliding window (`strict`) of small ticks, not maxRps at the top of each second: a burst of 50
  // would land on the primary's one loop at once, ahead of the frames.
  const perTick = Math.ceil(limits.maxRps / MAX_TICKS_PER_SECOND)
  return new PQueue({
    concurrency: limits.maxInFlight,
    intervalCap: perTick,
    interval: (perTick * 1000) / limits.maxRps,
    strict: true,
  })
}

const orNull = (n: number): number | null => (Number.isFinite(n) ? n : null)

/**
 * An HTTP reader of one backend (undici pool with keep-alive, so the triple reads stay close). Every
 * request, logins included, waits its turn under the side's {@link LoadLimits}.
 */
export class BackendClient {
  readonly side: 'primary' | 'shadow'
  readonly url: string
  readonly limits: LoadLimits
  private readonly pool: Pool
  private readonly queue: PQueue
  private readonly auth: BackendAuth
  private readonly log: Logger
  private readonly timeoutMs: number
  private cookie: string | undefined
  /** The login under way, which every read that needs a cookie joins. */
  private loggingIn: Promise<void> | undefined
  /** Credentials the backend refused: not tried again, so a wrong password never becomes a stream of bcrypt work. */
  private loginRefused: OverlordError | undefined
  private requests = 0
  private readonly lifetime: LoadMark = { requests: 0, firstStartAt: undefined }
  private lastStartAt: number | undefined
  private openMarks: LoadMark[] = []

  constructor(options: BackendOptions) {
    this.side = options.side
    this.url = options.url.replace(/\/$/, '')
    this.auth = options.auth ?? { kind: 'trust' }
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.log = options.logger.child({ component: 'poller', side: options.side })
    this.limits = checkLimits(options.side, { ...DEFAULT_LIMITS[options.side], ...options.limits })
    this.queue = queueFor(this.limits)
    this.openMarks.push(this.lifetime)
    this.pool = new Pool(new URL(this.url).origin, {
      connections:
        options.connections ?? (Number.isFinite(this.limits.maxInFlight) ? this.limits.maxInFlight : 16),
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
    if (this.auth.kind === 'cookie') this.cookie = this.auth.cookie
  }

  private fullPath(path: string): string {
    return `${new URL(this.url).pathname.replace(/\/$/, '')}${path}`
  }

  /** Runs one HTTP exchange when the limits let it start; resolves with its start time and result. */
  private async send<T>(exchange: () => Promise<T>): Promise<{ at: number; value: T }> {
    return this.queue.add(async () => {
      const at = Date.now()
      this.requests += 1
      this.lastStartAt = at
      for (const mark of this.openMarks) mark.firstStartAt = at
      this.openMarks = []
      return { at, value: await exchange() }
    })
  }

  private async login(): Promise<void> {
    if (this.auth.kind !== 'login') return
    const { username, password, loginPath } = this.auth
    const { value: res } = await this.send(async () => {
      const answer = await this.pool.request({
        method: 'POST',
        path: this.fullPath(loginPath ?? '/login'),
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
      })
      await answer.body.dump()
      return answer
    })
    const setCookie = res.headers['set-cookie']
    const first = Array.isArray(setCookie) ? setCookie[0] : setCookie
    if (res.statusCode >= 400 || first === undefined) {
      const refused = new OverlordError(ERR.CMP_BACKEND, `${this.side}: login refused (${res.statusCode})`)
      // Wrong credentials stay wrong; a 429 or a 5xx may pass later, at the next read that needs it.
      if (res.statusCode === 401 || res.statusCode === 403) this.loginRefused = refused
      throw refused
    }
    this.cookie = first.split(';')[0]
  }

  /**
   * Makes sure there is a cookie newer than `stale` (the one a 401 answered): one login at a time,
   * whichever reads need it.
   */
  private async ensureCookie(stale?: string): Promise<void> {
    if (this.auth.kind !== 'login') return
    if (this.loginRefused !== undefined) throw this.loginRefused
    if (this.cookie !== undefined && this.cookie !== stale) return
    this.loggingIn ??= this.login().finally(() => {
      this.loggingIn = undefined
    })
    await this.loggingIn
  }

  /**
   * The headers that authenticate this client (`cookie`, or none under internal trust), logging in
   * first when its auth is `login` and it has no session yet; for connections the poller does not
   * make itself, such as a `/ws/live` WebSocket. Rejects (`CMP_ERR_BACKEND`) when the login fails.
   */
  async authHeaders(): Promise<Record<string, string>> {
    await this.ensureCookie()
    return this.cookie === undefined ? {} : { cookie: this.cookie }
  }

  /** GETs `path` (with query) and parses JSON; network failures become `ok: false`, never a throw. */
  async get(path: string): Promise<ReadResult> {
    let startedAt = Date.now()
    try {
      await this.ensureCookie()
      let read = await this.request(path)
      if (read.value.status === 401 && this.auth.kind === 'login') {
        await this.ensureCookie(read.value.cookie)
        read = await this.request(path)
      }
      startedAt = read.at
      const { status, body } = read.value
      return { ok: true, status, body, startedAt, ms: Date.now() - startedAt }
    } catch (caught) {
      const err = coerceError(caught)
      this.log.debug({ err, path }, 'read failed')
      const code = err instanceof OverlordError ? err.code : ERR.CMP_BACKEND
      const detail = (err as { code?: string }).code
      const message = `${this.side} ${path}: ${detail === undefined ? err.message : `${detail} ${err.message}`}`
      return { ok: false, code, message, startedAt, ms: Date.now() - startedAt }
    }
  }

  private async request(path: string) {
    return this.send(async () => {
      // The cookie as it is when the read leaves the queue: a login may have renewed it meanwhile.
      const cookie = this.cookie
      const headers: Record<string, string> = { accept: 'application/json' }
      if (cookie !== undefined) headers.cookie = cookie
      const res = await this.pool.request({ method: 'GET', path: this.fullPath(path), headers })
      const text = await res.body.text()
      let body: unknown = text
      if (text !== '') {
        try {
          body = JSON.parse(text)
        } catch {
          // Not JSON (an HTML error page from nginx, say): compared as text.
        }
      }
      return { status: res.statusCode, body, cookie }
    })
  }

  /** Opens a load window here, e.g. at the start of a sweep: pass it to {@link stats}. */
  mark(): LoadMark {
    const mark: LoadMark = { requests: this.requests, firstStartAt: undefined }
    this.openMarks.push(mark)
    return mark
  }

  /**
   * The load this client put on its backend since `since` (a {@link mark}), or since it was made:
   * requests sent, the limits, and the rate achieved between the first and the last request start.
   */
  stats(since: LoadMark = this.lifetime): BackendLoad {
    const requests = this.requests - since.requests
    const first = since.firstStartAt
    const last = this.lastStartAt
    const span = first === undefined || last === undefined ? 0 : last - first
    return {
      requests,
      maxRps: orNull(this.limits.maxRps),
      maxInFlight: orNull(this.limits.maxInFlight),
      achievedRps: requests >= 2 && span > 0 ? Math.round(((requests - 1) * 10_000) / span) / 10 : null,
    }
  }

  async close(): Promise<void> {
    this.queue.clear()
    await this.pool.close()
  }
}
