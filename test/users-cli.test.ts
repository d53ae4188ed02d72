import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { login } from './support/auth.ts'
import { createTestDatabase, type TestDatabase } from './support/db.ts'
import { type RunningTracker, startTracker } from './support/tracker.ts'

/** Runs the real CLI with `stdin` piped in; resolves its exit code and output. */
function cli(args: string[], env: Record<string, string>, stdin = '') {
  const child = spawn(process.execPath, ['src/cli/main.ts', 'users', ...args], {
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  child.stdin.end(stdin)
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
}

let db: TestDatabase
let env: Record<string, string>
beforeAll(async () => {
  db = await createTestDatabase()
  env = { DATABASE_URL: db.url }
})
afterAll(() => db.drop())

describe('overlord-ts users', () => {
  it('creates the first admin, who can then log in and manage users', async () => {
    const add = await cli(['add', 'root', '--admin'], env, 'root-password\n')
    expect(add).toMatchObject({ code: 0, stderr: '' })
    expect(add.stdout).toMatch(/^created admin root \(id \d+\)\n$/)
    let t: RunningTracker | undefined
    try {
      t = await startTracker({ databaseUrl: db.url, sessions: { secretKey: 'k' } })
      const answer = await login(t.url, 'root', 'root-password')
      expect(answer.body).toEqual({ username: 'root', is_admin: true })
    } finally {
      await t?.tracker.close()
    }
  })

  it('lists users without hashes, changes a password, removes a user', async () => {
    expect((await cli(['add', 'bob'], env, 'first-pw\n')).code).toBe(0)
    const list = await cli(['list'], env)
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/\troot\tadmin\t/)
    expect(list.stdout).toMatch(/\tbob\tuser\t/)
    expect(list.stdout).not.toContain('$2b$')
    expect(await cli(['passwd', 'bob'], env, 'second-pw\n')).toMatchObject({
      code: 0,
      stdout: 'password changed for bob\n',
    })
    const t = await startTracker({ databaseUrl: db.url, sessions: { secretKey: 'k' } })
    try {
      expect((await login(t.url, 'bob', 'first-pw')).status).toBe(401)
      expect((await login(t.url, 'bob', 'second-pw')).status).toBe(200)
    } finally {
      await t.tracker.close()
    }
    expect(await cli(['remove', 'bob'], env)).toMatchObject({ code: 0, stdout: 'removed bob\n' })
  })

  it('says what is wrong in one line, with a non-zero exit', async () => {
    const cases = [
      {
        run: cli(['add', 'root'], env, 'x\n'),
        line: 'overlord-ts: user root already exists (passwd changes a password)',
      },
      { run: cli(['remove', 'ghost'], env), line: 'overlord-ts: no user ghost' },
      {
        run: cli(['add', 'empty'], env, ''),
        line: 'overlord-ts: empty password (give it on stdin, or type it at the prompt)',
      },
      {
        run: cli(['list'], { DATABASE_URL: db.url.replace(/\/[^/]+$/, '/dereth') }),
        line: `overlord-ts: refusing to write into the primary's database "dereth": use dereth_ts, or READ_ONLY=true (only TRACKER_ROLE=primary writes it)`,
      },
    ]
    for (const { run: pending, line } of cases) {
      const run = await pending
      expect(run.code).toBe(2)
      expect(run.stderr).toBe(`${line}\n`)
    }
  })
})
