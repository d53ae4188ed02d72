import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUser } from '../src/db/users.ts'
import { asUser, login, PROXIED } from './support/auth.ts'
import { closeCode, connectBrowser, getJson, type RunningTracker, startTracker } from './support/tracker.ts'
import { captureLogs } from './support/logs.ts'

const KEY = 'test-secret-key'
const { logger, lines: logLines } = captureLogs('info')

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker({
    sessions: { secretKey: KEY },
    logger,
    loginLimits: { maxPerUser: 3, maxPerAddress: 6, windowMs: 60_000 },
  })
  await createUser(t.tracker.db, { username: 'admin', password: 'admin-pw', isAdmin: true })
  await createUser(t.tracker.db, { username: 'viewer', password: 'viewer-pw' })
})
afterAll(() => t.close())

describe('login and sessions (CONTRACT.md §4-5)', () => {
  it('a forwarded request needs a session: 401 without, 200 with the cookie from /login', async () => {
    expect(await asUser(`${t.url}/live`, undefined)).toEqual({
      status: 401,
      body: { detail: 'Not authenticated' },
    })
    const answer = await login(t.url, 'viewer', 'viewer-pw')
    expect(answer.status).toBe(200)
    expect(answer.body).toEqual({ username: 'viewer', is_admin: false })
    expect(answer.setCookie).toMatch(/^session=[\w.-]+; Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/)
    expect((await asUser(`${t.url}/live`, answer.cookie)).status).toBe(200)
    expect(await asUser(`${t.url}/me`, answer.cookie)).toEqual({
      status: 200,
      body: { username: 'viewer', is_admin: false },
    })
  })

  it('/me under internal trust is the internal admin, as on the primary', async () => {
    expect(await getJson(`${t.url}/me`)).toEqual({
      status: 200,
      body: { username: 'internal', is_admin: true },
    })
  })

  it('refuses a wrong password and an unknown user alike, and never logs a password', async () => {
    const wrong = await login(t.url, 'admin', 'not-the-password', { 'x-forwarded-for': '198.51.100.1' })
    const unknown = await login(t.url, 'nobody', 'whatever-pw', { 'x-forwarded-for': '198.51.100.1' })
    for (const a of [wrong, unknown]) {
      expect(a.status).toBe(401)
      expect(a.body).toEqual({ detail: 'Invalid username or password' })
      expect(a.cookie).toBeUndefined()
    }
    const failures = logLines.filter((l) => l.msg === 'login failed')
    expect(failures.map((l) => l.username)).toEqual(expect.arrayContaining(['admin', 'nobody']))
    const text = JSON.stringify(logLines)
    expect(text).not.toContain('not-the-password')
    expect(text).not.toContain('whatever-pw')
  })

  it('a form post logs in and is sent back to the dashboard (303)', async () => {
    const res = await fetch(`${t.url}/login`, {
      method: 'POST',
      headers: { ...PROXIED, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: 'username=viewer&password=viewer-pw',
      redirect: 'manual',
    })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/')
    expect(res.headers.get('set-cookie')).toMatch(/^session=/)
  })

  it('a login body that fails validation gets FastAPI 422', async () => {
    const res = await asUser(`${t.url}/login`, undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'viewer' }),
    })
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({ type: 'missing', loc: ['body', 'password'] })
  })

  it('logout clears the cookie', async () => {
    const { cookie } = await login(t.url, 'viewer', 'viewer-pw')
    const res = await fetch(`${t.url}/logout`, {
      method: 'POST',
      headers: { ...PROXIED, cookie: cookie as string },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('set-cookie')).toMatch(/^session=; .*Expires=Thu, 01 Jan 1970/)
  })

  it('refuses tampered, truncated, oversize and foreign-key cookies', async () => {
    const { cookie } = await login(t.url, 'viewer', 'viewer-pw')
    const token = (cookie as string).slice('session='.length)
    const [payload, ts, sig] = token.split('.') as [string, string, string]
    const forged = Buffer.from(JSON.stringify({ username: 'admin' })).toString('base64url')
    const bad = [
      `${forged}.${ts}.${sig}`,
      `${payload}.${ts}.${sig.slice(0, -2)}`,
      token.slice(0, token.lastIndexOf('.')),
      `${payload}.${ts}.${sig}${'A'.repeat(5000)}`,
      'garbage',
    ]
    for (const value of bad) expect((await asUser(`${t.url}/me`, `session=${value}`)).status).toBe(401)
    const other = await startTracker({ sessions: { secretKey: 'another-key' } })
    try {
      await createUser(other.tracker.db, { username: 'viewer', password: 'viewer-pw' })
      const foreign = await login(other.url, 'viewer', 'viewer-pw')
      expect((await asUser(`${t.url}/me`, foreign.cookie)).status).toBe(401)
    } finally {
      await other.close()
    }
  })

  it('authorizes /ws/live by the session cookie, and refuses a bad one with 1008', async () => {
    const { cookie } = await login(t.url, 'viewer', 'viewer-pw')
    const ok = await connectBrowser(t.wsUrl, { ...PROXIED, cookie: cookie as string })
    const refused = await connectBrowser(t.wsUrl, { ...PROXIED, cookie: 'session=forged.token.sig' })
    expect(await closeCode(refused.ws)).toBe(1008)
    expect(ok.ws.readyState).toBe(ok.ws.OPEN)
    ok.ws.close()
  })
})

describe('login rate limit', () => {
  it('locks a username after repeated failures, even for the right password, with Retry-After', async () => {
    const { cookie: adminCookie } = await login(t.url, 'admin', 'admin-pw', {
      'x-forwarded-for': '192.0.2.50',
    })
    await asUser(`${t.url}/api-admin/users`, adminCookie, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'locked', password: 'locked-pw' }),
    })
    for (let i = 0; i < 3; i++)
      expect((await login(t.url, 'locked', 'nope', { 'x-forwarded-for': `192.0.2.${i + 1}` })).status).toBe(
        401,
      )
    const res = await fetch(`${t.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.99' },
      body: JSON.stringify({ username: 'locked', password: 'locked-pw' }),
    })
    expect(res.status).toBe(429)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await res.json()).toEqual({ detail: 'Too many failed login attempts, try again later' })
  })

  it('locks an address guessing across usernames, without locking other addresses', async () => {
    const guesser = { 'x-forwarded-for': '198.51.100.200' }
    for (let i = 0; i < 6; i++) await login(t.url, `user${i}`, 'guess', guesser)
    expect((await login(t.url, 'viewer', 'viewer-pw', guesser)).status).toBe(429)
    expect((await login(t.url, 'viewer', 'viewer-pw', { 'x-forwarded-for': '198.51.100.201' })).status).toBe(
      200,
    )
  })
})

describe('/api-admin/users (admin only)', () => {
  it('answers 403 to a signed-in non-admin and 401 to nobody', async () => {
    const { cookie } = await login(t.url, 'viewer', 'viewer-pw')
    expect(await asUser(`${t.url}/api-admin/users`, cookie)).toEqual({
      status: 403,
      body: { detail: 'Admin privileges required' },
    })
    expect((await asUser(`${t.url}/api-admin/users`, undefined)).status).toBe(401)
  })

  it('creates, lists and deletes users; a deleted user is signed out', async () => {
    const { cookie } = await login(t.url, 'admin', 'admin-pw')
    const post = (body: unknown) =>
      asUser(`${t.url}/api-admin/users`, cookie, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const created = await post({ username: 'carol', password: 'carol-pw', is_admin: false })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ username: 'carol', is_admin: false })
    expect(created.body).not.toHaveProperty('password_hash')
    expect(await post({ username: 'carol', password: 'x' })).toEqual({
      status: 409,
      body: { detail: 'Username already exists' },
    })
    expect((await post({ username: 'long', password: 'é'.repeat(40) })).status).toBe(400)

    const carol = await login(t.url, 'carol', 'carol-pw')
    expect((await asUser(`${t.url}/me`, carol.cookie)).status).toBe(200)
    const list = await asUser(`${t.url}/api-admin/users`, cookie)
    expect(list.body.users.map((u: { username: string }) => u.username)).toContain('carol')
    expect(JSON.stringify(list.body)).not.toContain('$2b$')

    const del = await asUser(`${t.url}/api-admin/users/${created.body.id}`, cookie, { method: 'DELETE' })
    expect(del).toMatchObject({ status: 200, body: { deleted: { username: 'carol' } } })
    expect((await asUser(`${t.url}/me`, carol.cookie)).status).toBe(401)
    expect(
      (await asUser(`${t.url}/api-admin/users/${created.body.id}`, cookie, { method: 'DELETE' })).status,
    ).toBe(404)
    expect((await asUser(`${t.url}/api-admin/users/abc`, cookie, { method: 'DELETE' })).status).toBe(422)
  })

  it('an admin cannot delete their own account', async () => {
    const { cookie } = await login(t.url, 'admin', 'admin-pw')
    const { body } = await asUser(`${t.url}/api-admin/users`, cookie)
    const me = body.users.find((u: { username: string }) => u.username === 'admin')
    expect(await asUser(`${t.url}/api-admin/users/${me.id}`, cookie, { method: 'DELETE' })).toEqual({
      status: 400,
      body: { detail: 'You cannot delete your own account' },
    })
  })
})

describe('without SECRET_KEY', () => {
  it('warns, and its sessions die with the process', async () => {
    const { logger: capture, lines } = captureLogs('warn')
    const first = await startTracker({ logger: capture })
    await createUser(first.tracker.db, { username: 'viewer', password: 'viewer-pw' })
    const { cookie } = await login(first.url, 'viewer', 'viewer-pw')
    expect((await asUser(`${first.url}/me`, cookie)).status).toBe(200)
    await first.tracker.close()
    const second = await startTracker({ logger: capture, databaseUrl: first.database.url })
    try {
      expect((await asUser(`${second.url}/me`, cookie)).status).toBe(401)
    } finally {
      await second.tracker.close()
      await first.database.drop()
    }
    expect(lines.some((l) => String(l.msg).startsWith('SECRET_KEY is not set'))).toBe(true)
  })
})

describe('a read-only tracker (on the primary database)', () => {
  it('logs users in but changes none', async () => {
    const ro = await startTracker({
      readOnly: true,
      sessions: { secretKey: KEY },
      databaseUrl: t.database.url,
    })
    try {
      const { cookie } = await login(ro.url, 'admin', 'admin-pw')
      const res = await asUser(`${ro.url}/api-admin/users`, cookie, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'dave', password: 'dave-pw' }),
      })
      expect(res.status).toBe(403)
      const { body } = await getJson(`${t.url}/api-admin/users`)
      expect(body.users.map((u: { username: string }) => u.username)).not.toContain('dave')
    } finally {
      await ro.tracker.close()
    }
  })
})
