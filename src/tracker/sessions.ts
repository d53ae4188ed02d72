import { randomBytes } from 'node:crypto'
import { parseCookie } from 'cookie'
import { LRUCache } from 'lru-cache'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { TimedSerializer } from '../protocol/itsdangerous.ts'

/** CONTRACT.md §5: itsdangerous' default salt, a 30-day max age. */
export const SESSION_MAX_AGE_SECONDS = 30 * 24 * 3600
/**
 * Browsers keep cookies up to 4 096 bytes; a longer value is refused before any work, whatever
 * it holds (a session token is about 90 bytes).
 */
export const MAX_SESSION_COOKIE_BYTES = 4096

export interface SessionOptions {
  /** `SECRET_KEY`; none = a random key, so sessions last until the next restart (as the legacy). */
  secretKey?: string
  /** Cookie name (chosen: `session`), itsdangerous salt (`itsdangerous`) and payload field (`username`). */
  cookieName?: string
  salt?: string
  field?: string
  maxAgeSeconds?: number
  /**
   * The cookie's Path. Under `/ts/` it is the base path, so logging in to the shadow never
   * replaces the primary's cookie of the same name on the same site (CONTRACT.md §10).
   */
  path?: string
}

/** Mints and reads the session cookie (CONTRACT.md §5), compatible both ways with the Python tracker. */
export class Sessions {
  readonly cookieName: string
  /** True when no SECRET_KEY was configured and this process made one up. */
  readonly ephemeralKey: boolean
  readonly #serializer: TimedSerializer
  readonly #field: string
  readonly #maxAge: number
  readonly #path: string
  /**
   * Tokens already verified, with who and when: OpenSSL makes every HMAC context afresh (~25 µs),
   * and a dashboard presents the same cookie on every poll. Only the age is checked again.
   */
  readonly #verified = new LRUCache<string, { username: string; issuedAt: number }>({ max: 10_000 })

  constructor(options: SessionOptions = {}) {
    this.ephemeralKey = options.secretKey === undefined
    const secretKey = options.secretKey ?? randomBytes(32).toString('hex')
    this.#serializer = new TimedSerializer({ secretKey, salt: options.salt ?? 'itsdangerous' })
    this.cookieName = options.cookieName ?? 'session'
    this.#field = options.field ?? 'username'
    this.#maxAge = options.maxAgeSeconds ?? SESSION_MAX_AGE_SECONDS
    this.#path = options.path ?? '/'
  }

  /** A session token for `username`, as the Python tracker mints it. */
  mint(username: string, nowMs: number): string {
    return this.#serializer.dumps({ [this.#field]: username }, nowMs / 1000)
  }

  /** The username a token vouches for, or undefined for any refused token. */
  verify(token: string, nowMs: number): string | undefined {
    if (token.length > MAX_SESSION_COOKIE_BYTES) return undefined
    const known = this.#verified.get(token)
    if (known !== undefined) {
      const age = Math.floor(nowMs / 1000) - known.issuedAt
      return age <= this.#maxAge && age >= 0 ? known.username : undefined
    }
    const result = this.#serializer.loads(token, this.#maxAge, nowMs / 1000)
    if (!result.ok) return undefined
    const payload = result.value
    if (typeof payload !== 'object' || payload === null || !Object.hasOwn(payload, this.#field))
      return undefined
    const username = (payload as Record<string, unknown>)[this.#field]
    if (typeof username !== 'string' || username === '') return undefined
    this.#verified.set(token, { username, issuedAt: result.issuedAt })
    return username
  }

  /** The username of the request's session cookie (a `Cookie` header), or undefined. */
  fromCookieHeader(header: string | undefined, nowMs: number): string | undefined {
    if (header === undefined || header.length > 16 * 1024) return undefined
    // The `cookie` package @fastify/cookie parses with; its own `parse` only works once the plugin
    // has loaded it, and the WebSocket upgrade reads cookies outside any fastify request.
    const token = parseCookie(header)[this.cookieName]
    return token === undefined ? undefined : this.verify(token, nowMs)
  }

  /** Sets the cookie on a login answer. */
  set(req: FastifyRequest, reply: FastifyReply, username: string, nowMs: number): void {
    reply.setCookie(this.cookieName, this.mint(username, nowMs), {
      path: this.#path,
      httpOnly: true,
      sameSite: 'lax',
      maxAge: this.#maxAge,
      secure: req.headers['x-forwarded-proto'] === 'https',
    })
  }

  /** Clears the cookie (logout). */
  clear(reply: FastifyReply): void {
    reply.clearCookie(this.cookieName, { path: this.#path, httpOnly: true, sameSite: 'lax' })
  }
}
