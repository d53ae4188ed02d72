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

export interface BackendOptions {
  /** `primary` or `shadow`: how it appears in reports. */
  side: 'primary' | 'shadow'
  url: string
  auth?: BackendAuth
  logger: Logger
  /** Parallel connections to this backend. */
  connections?: number
  timeoutMs?: number
}

/** One read: the status and parsed body, or why there was none. */
export type ReadResult =
  | { ok: true; status: number; body: unknown; startedAt: number; ms: number }
  | { ok: false; code: string; message: string; startedAt: number; ms: number }

/** An HTTP reader of one backend (undici pool with keep-alive, so the triple reads stay close). */
export class BackendClient {
  readonly side: 'primary' | 'shadow'
  readonly url: string
  private readonly pool: Pool
  private readonly auth: BackendAuth
  private readonly log: Logger
  private readonly timeoutMs: number
  private cookie: string | undefined

  constructor(options: BackendOptions) {
    this.side = options.side
    this.url = options.url.replace(/\/$/, '')
    this.auth = options.auth ?? { kind: 'trust' }
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.log = options.logger.child({ component: 'poller', side: options.side })
    this.pool = new Pool(new URL(this.url).origin, {
      connections: options.connections ?? 16,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    })
    if (this.auth.kind === 'cookie') this.cookie = this.auth.cookie
  }

  private fullPath(path: string): string {
    return `${new URL(this.url).pathname.replace(/\/$/, '')}${path}`
  }

  private async login(): Promise<void> {
    if (this.auth.kind !== 'login') return
    const res = await this.pool.request({
      method: 'POST',
      path: this.fullPath(this.auth.loginPath ?? '/login'),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: this.auth.username, password: this.auth.password }),
    })
    await res.body.dump()
    const setCookie = res.headers['set-cookie']
    const first = Array.isArray(setCookie) ? setCookie[0] : setCookie
    if (res.statusCode >= 400 || first === undefined) {
      throw new OverlordError(ERR.CMP_BACKEND, `${this.side}: login refused (${res.statusCode})`)
    }
    this.cookie = first.split(';')[0]
  }

  /** GETs `path` (with query) and parses JSON; network failures become `ok: false`, never a throw. */
  async get(path: string): Promise<ReadResult> {
    const startedAt = Date.now()
    try {
      if (this.auth.kind === 'login' && this.cookie === undefined) await this.login()
      let res = await this.request(path)
      if (res.status === 401 && this.auth.kind === 'login') {
        await this.login()
        res = await this.request(path)
      }
      return { ok: true, status: res.status, body: res.body, startedAt, ms: Date.now() - startedAt }
    } catch (caught) {
      const err = coerceError(caught)
      this.log.debug({ err, path }, 'read failed')
      const code = err instanceof OverlordError ? err.code : ERR.CMP_BACKEND
      const detail = (err as { code?: string }).code
      const message = `${this.side} ${path}: ${detail === undefined ? err.message : `${detail} ${err.message}`}`
      return { ok: false, code, message, startedAt, ms: Date.now() - startedAt }
    }
  }

  private async request(path: string): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.cookie !== undefined) headers.cookie = this.cookie
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
    return { status: res.statusCode, body }
  }

  async close(): Promise<void> {
    await this.pool.close()
  }
}
