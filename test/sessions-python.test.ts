import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUser, findUser } from '../src/db/users.ts'
import { asUser, login } from './support/auth.ts'
import { findPython } from './support/python.ts'
import { type RunningTracker, startTracker } from './support/tracker.ts'

// CONTRACT.md §5: cookies and password hashes work both ways with the real Python libraries the
// legacy tracker uses (Debian's python3-itsdangerous and python3-bcrypt).
const PYTHON = findPython(['itsdangerous', 'bcrypt'])
const KEY = 'shared-secret-key-of-both-trackers'
const MONTH = 30 * 24 * 3600

function py(request: Record<string, unknown>): any {
  const run = spawnSync(PYTHON, ['test/python/auth_compat.py'], {
    input: JSON.stringify(request),
    encoding: 'utf8',
  })
  if (run.status !== 0) throw new Error(`auth_compat.py failed: ${run.stderr}`)
  return JSON.parse(run.stdout)
}

const mint = (payload: unknown, extra: Record<string, unknown> = {}): string =>
  py({ op: 'mint', key: KEY, payload, ...extra }).token

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker({ sessions: { secretKey: KEY } })
  await createUser(t.tracker.db, { username: 'alice', password: 'alice-pw', isAdmin: true })
})
afterAll(() => t.close())

describe('session cookies both ways with Python itsdangerous', () => {
  it('accepts a cookie minted by Python', async () => {
    const cookie = `session=${mint({ username: 'alice' })}`
    expect(await asUser(`${t.url}/me`, cookie)).toEqual({
      status: 200,
      body: { username: 'alice', is_admin: true },
    })
  })

  it('accepts a Python cookie whose payload is zlib-compressed', async () => {
    await createUser(t.tracker.db, { username: 'b'.repeat(200), password: 'pw' })
    const token = mint({ username: 'b'.repeat(200) })
    expect(token.startsWith('.')).toBe(true)
    expect((await asUser(`${t.url}/me`, `session=${token}`)).status).toBe(200)
  })

  it('mints cookies that Python verifies, compressed or not', async () => {
    for (const name of ['alice', 'b'.repeat(200)]) {
      const { cookie } = await login(t.url, name, name === 'alice' ? 'alice-pw' : 'pw')
      const token = (cookie as string).slice('session='.length)
      expect(py({ op: 'load', key: KEY, token, max_age: MONTH })).toEqual({
        ok: true,
        payload: { username: name },
      })
    }
  })

  it('refuses what Python refuses: expired, wrong key, wrong salt, tampered, truncated', async () => {
    const cases: Record<string, string> = {
      expired: mint({ username: 'alice' }, { age: MONTH + 60 }),
      wrongKey: py({ op: 'mint', key: 'another-key', payload: { username: 'alice' } }).token,
      wrongSalt: mint({ username: 'alice' }, { salt: 'cookie-session' }),
      tampered: mint({ username: 'alice' }).replace(/^[A-Za-z0-9_-]{4}/, 'eyJh'),
      truncated: mint({ username: 'alice' }).slice(0, -3),
    }
    for (const [why, token] of Object.entries(cases)) {
      expect((await asUser(`${t.url}/me`, `session=${token}`)).status, why).toBe(401)
      expect(py({ op: 'load', key: KEY, token, max_age: MONTH }).ok, why).toBe(false)
    }
    // Just inside the 30 days both sides still accept.
    const old = mint({ username: 'alice' }, { age: MONTH - 60 })
    expect((await asUser(`${t.url}/me`, `session=${old}`)).status).toBe(200)
  })

  it('refuses an oversize cookie before reading it', async () => {
    // Random text, so zlib cannot shrink it under the 4 096-byte bound.
    const token = mint({ username: 'alice', pad: randomBytes(4500).toString('base64') })
    expect(token.length).toBeGreaterThan(4096)
    expect(py({ op: 'load', key: KEY, token, max_age: MONTH }).ok).toBe(true)
    expect((await asUser(`${t.url}/me`, `session=${token}`)).status).toBe(401)
  })
})

describe('bcrypt hashes both ways with Python bcrypt', () => {
  it('logs in a user whose $2b$ hash Python made', async () => {
    const { hash } = py({ op: 'hash', password: 'from-python' })
    expect(hash).toMatch(/^\$2b\$12\$/)
    await t.tracker.db.query('INSERT INTO users (username, password_hash, is_admin) VALUES ($1, $2, false)', [
      'pyuser',
      hash,
    ])
    expect((await login(t.url, 'pyuser', 'from-python')).status).toBe(200)
    expect((await login(t.url, 'pyuser', 'from-python!')).status).toBe(401)
  })

  it('makes $2b$ hashes that Python checks', async () => {
    await createUser(t.tracker.db, { username: 'tsuser', password: 'from-typescript ünïcode' })
    const row = await findUser(t.tracker.db, 'tsuser')
    expect(row?.password_hash).toMatch(/^\$2b\$12\$/)
    expect(py({ op: 'check', password: 'from-typescript ünïcode', hash: row?.password_hash }).ok).toBe(true)
    expect(py({ op: 'check', password: 'from-typescript', hash: row?.password_hash }).ok).toBe(false)
  })
})
