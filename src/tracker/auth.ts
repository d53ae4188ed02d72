import type { IncomingHttpHeaders } from 'node:http'
import { LRUCache } from 'lru-cache'
import { findUser } from '../db/users.ts'
import type { Db } from '../db/pool.ts'
import type { Clock } from '../protocol/time.ts'
import type { Sessions } from './sessions.ts'
import { isInternalRequest } from './trust.ts'

/** Who a request acts for (CONTRACT.md §5). */
export interface Principal {
  username: string
  isAdmin: boolean
  /** Internal trust rather than a session. */
  internal: boolean
}

/** Internal trust answers `/me` as the Python tracker does. */
export const INTERNAL: Principal = Object.freeze({ username: 'internal', isAdmin: true, internal: true })

/** How long a session's user row is trusted before it is read again. */
const USER_CACHE_MS = 5_000

/**
 * Resolves a request's principal: internal trust, else a valid session cookie whose user still
 * exists (a deleted user's cookie stops working within {@link USER_CACHE_MS}, at once on this
 * tracker). User rows are cached briefly so polling browsers cost no query per request.
 */
export class Auth {
  readonly #db: Db
  readonly #clock: Clock
  readonly sessions: Sessions
  readonly #users = new LRUCache<string, { isAdmin: boolean } | false>({ max: 10_000, ttl: USER_CACHE_MS })

  constructor(options: { db: Db; clock: Clock; sessions: Sessions }) {
    this.#db = options.db
    this.#clock = options.clock
    this.sessions = options.sessions
  }

  async principal(
    remoteAddress: string | undefined,
    headers: IncomingHttpHeaders,
  ): Promise<Principal | undefined> {
    if (isInternalRequest(remoteAddress, headers)) return INTERNAL
    const username = this.sessions.fromCookieHeader(headers.cookie, this.#clock.now())
    if (username === undefined) return undefined
    let user = this.#users.get(username)
    if (user === undefined) {
      const row = await findUser(this.#db, username)
      user = row === undefined ? false : { isAdmin: row.is_admin }
      this.#users.set(username, user)
    }
    return user === false ? undefined : { username, isAdmin: user.isAdmin, internal: false }
  }

  /** Drops a cached user after it was deleted or changed. */
  forget(username: string): void {
    this.#users.delete(username)
  }
}
