import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Db } from '../../db/pool.ts'
import { createUser, deleteUser, findUser, findUserById, isDuplicateUser, listUsers } from '../../db/users.ts'
import { LoginBody, NewUserBody, UserIdParams } from '../../protocol/auth-schemas.ts'
import { LogThrottle } from '../../protocol/log-throttle.ts'
import { hashPassword, passwordTooLong, verifyPassword } from '../../protocol/passwords.ts'
import type { Clock } from '../../protocol/time.ts'
import type { Auth, Principal } from '../auth.ts'
import type { LoginLimiter } from '../login-limiter.ts'
import { isPrivateAddress } from '../trust.ts'
import { detail } from './read-api.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every route that needs auth. */
    principal?: Principal
  }
}

export interface AuthApiOptions {
  db: Db
  clock: Clock
  logger: Logger
  auth: Auth
  limiter: LoginLimiter
  /** Where a native form login lands afterwards (`BASE_PATH`, or the root). */
  basePath: string
  /** A tracker connected read-only (to the primary's database) changes no user. */
  readOnly: boolean
}

/** Counters for `/metrics`. */
export interface AuthStats {
  logins_ok: number
  logins_failed: number
  logins_rate_limited: number
}

/**
 * The client a login counts against: behind a proxy on a private address (nginx), the address
 * it appended last to `X-Forwarded-For`; otherwise the peer. Everyone behind nginx would
 * otherwise share one address, and one guesser would lock them all out.
 */
export function clientAddress(req: FastifyRequest): string {
  const peer = req.socket.remoteAddress ?? 'unknown'
  const forwarded = req.headers['x-forwarded-for']
  if (typeof forwarded !== 'string' || !isPrivateAddress(peer)) return peer
  const last = forwarded.split(',').at(-1)?.trim()
  return last === undefined || last === '' ? peer : last
}

const wantsHtml = (req: FastifyRequest) =>
  req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') === true &&
  (req.headers.accept ?? '').includes('text/html')

/** `POST /login`, `POST /logout`, `GET /me` and the admin user CRUD (CONTRACT.md §4, §5). */
export function registerAuthApi(app: FastifyInstance, o: AuthApiOptions): AuthStats {
  const { db, clock, auth, limiter } = o
  const log = o.logger.child({ component: 'auth' })
  const throttle = new LogThrottle()
  const stats: AuthStats = { logins_ok: 0, logins_failed: 0, logins_rate_limited: 0 }
  // An unknown user costs a hash comparison too, so timing does not tell which names exist.
  let decoy: Promise<string> | undefined

  // A login form posts `application/x-www-form-urlencoded`; the platform's parser reads it.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.post<{ Body: LoginBody }>('/login', { schema: { body: LoginBody } }, async (req, reply) => {
    const { username, password } = req.body
    const address = clientAddress(req)
    const now = clock.now()
    const wait = limiter.retryAfter(address, username, now)
    if (wait > 0) {
      stats.logins_rate_limited += 1
      reply.header('retry-after', String(wait))
      return detail(reply, 429, 'Too many failed login attempts, try again later')
    }
    const user = await findUser(db, username)
    decoy ??= hashPassword('decoy password')
    const ok = await verifyPassword(password, user?.password_hash ?? (await decoy))
    if (user === undefined || !ok) {
      stats.logins_failed += 1
      limiter.failed(address, username, now)
      // The name and address only: never the password.
      const count = throttle.note(`${address}\u0000${username}`, now)
      if (count > 0) log.warn({ username, address, failures: count }, 'login failed')
      return detail(reply, 401, 'Invalid username or password')
    }
    stats.logins_ok += 1
    limiter.succeeded(username)
    auth.forget(username)
    auth.sessions.set(req, reply, username, now)
    log.info({ username, address }, 'login')
    if (wantsHtml(req)) return reply.code(303).header('location', `${o.basePath}/`).send()
    return { username, is_admin: user.is_admin }
  })

  app.post('/logout', async (_req, reply) => {
    auth.sessions.clear(reply)
    return { status: 'ok' }
  })

  app.get('/me', async (req) => {
    const who = req.principal as Principal
    return { username: who.username, is_admin: who.isAdmin }
  })

  const refuseReadOnly = (reply: FastifyReply): FastifyReply | undefined =>
    o.readOnly ? detail(reply, 403, 'This tracker is read-only: users are managed on the primary') : undefined

  app.get('/api-admin/users', async () => ({ users: await listUsers(db) }))

  app.post<{ Body: NewUserBody }>(
    '/api-admin/users',
    { schema: { body: NewUserBody } },
    async (req, reply) => {
      if (refuseReadOnly(reply)) return reply
      const { username, password, is_admin } = req.body
      if (passwordTooLong(password)) return detail(reply, 400, 'Password is longer than 72 bytes')
      try {
        const user = await createUser(db, { username, password, isAdmin: is_admin ?? false })
        log.info({ username, is_admin: user.is_admin, by: req.principal?.username }, 'user created')
        return reply.code(201).send(user)
      } catch (err) {
        if (isDuplicateUser(err)) return detail(reply, 409, 'Username already exists')
        throw err
      }
    },
  )

  app.delete<{ Params: UserIdParams }>(
    '/api-admin/users/:id',
    { schema: { params: UserIdParams } },
    async (req, reply) => {
      if (refuseReadOnly(reply)) return reply
      const existing = await findUserById(db, req.params.id)
      if (existing === undefined) return detail(reply, 404, 'User not found')
      if (existing.username === req.principal?.username)
        return detail(reply, 400, 'You cannot delete your own account')
      const deleted = await deleteUser(db, { id: req.params.id })
      if (deleted === undefined) return detail(reply, 404, 'User not found')
      auth.forget(deleted.username)
      log.info({ username: deleted.username, by: req.principal?.username }, 'user deleted')
      return { deleted }
    },
  )

  return stats
}
