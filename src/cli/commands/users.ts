import { text } from 'node:stream/consumers'
import type { Command } from 'commander'
import { read } from 'read'
import { startEmbeddedDatabase } from '../../db/embedded.ts'
import { createPool, type Db, ensureDatabase } from '../../db/pool.ts'
import { initSchema } from '../../db/schema.ts'
import { createUser, deleteUser, isDuplicateUser, listUsers, setPassword } from '../../db/users.ts'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { passwordTooLong } from '../../protocol/passwords.ts'
import type { CliContext } from '../program.ts'
import { trackerConfigFromEnv } from '../tracker-config.ts'

const fail = (message: string) => new OverlordError(ERR.CONFIG, message)

/**
 * The password, never from the command line (it would show in `ps` and shell history): asked
 * twice without echo on a terminal, else the first line of stdin (`printf '%s\n' "$PW" | …`).
 */
async function askPassword(): Promise<string> {
  let password: string
  if (process.stdin.isTTY) {
    password = await read({ prompt: 'Password: ', silent: true, replace: '' })
    const again = await read({ prompt: 'Again: ', silent: true, replace: '' })
    if (again !== password) throw fail('the passwords do not match')
  } else {
    password = (await text(process.stdin)).split(/\r?\n/)[0] ?? ''
  }
  if (password === '') throw fail('empty password (give it on stdin, or type it at the prompt)')
  if (passwordTooLong(password)) throw fail('password longer than 72 bytes (bcrypt reads no more)')
  return password
}

/**
 * Opens the tracker's database as `serve` would (same environment), with the schema in place.
 * The embedded database can be opened by one process at a time: stop `serve` first.
 */
async function withDatabase<T>(ctx: CliContext, work: (db: Db) => Promise<T>): Promise<T> {
  const config = trackerConfigFromEnv(ctx.env)
  if (config.tracker.readOnly) throw fail('READ_ONLY is set: users are managed on the primary')
  const embedded =
    config.tracker.databaseUrl === undefined ? await startEmbeddedDatabase(config.tracker.dataDir) : undefined
  const url = config.tracker.databaseUrl ?? (embedded?.connectionString as string)
  if (config.createDatabase !== undefined && config.tracker.databaseUrl !== undefined)
    await ensureDatabase(url, config.createDatabase)
  const db = createPool({ connectionString: url, max: 1, applicationName: 'overlord-ts users' })
  try {
    if (!config.tracker.skipSchemaInit) await initSchema(db)
    return await work(db)
  } finally {
    await db.end()
    await embedded?.close()
  }
}

/** `overlord-ts users add|list|remove|passwd`: the operator's way to the first admin. */
export function registerUsers(program: Command, ctx: CliContext): void {
  const users = program
    .command('users')
    .description("manage dashboard users in the tracker's database (DATABASE_URL, as serve)")

  users
    .command('add <username>')
    .description('create a user; the password is asked for, or read from stdin')
    .option('--admin', 'may manage users (/api-admin)')
    .action(async (username: string, opts: { admin?: boolean }) => {
      const password = await askPassword()
      await withDatabase(ctx, async (db) => {
        try {
          const user = await createUser(db, { username, password, isAdmin: opts.admin ?? false })
          ctx.out(`created ${user.is_admin ? 'admin' : 'user'} ${user.username} (id ${user.id})`)
        } catch (err) {
          if (isDuplicateUser(err)) throw fail(`user ${username} already exists (passwd changes a password)`)
          throw err
        }
      })
    })

  users
    .command('list')
    .description('list users (never their hashes)')
    .action(async () => {
      await withDatabase(ctx, async (db) => {
        const rows = await listUsers(db)
        if (rows.length === 0) ctx.out('no users (add one: overlord-ts users add <name> --admin)')
        for (const u of rows)
          ctx.out(`${u.id}\t${u.username}\t${u.is_admin ? 'admin' : 'user'}\t${u.created_at}`)
      })
    })

  users
    .command('remove <username>')
    .description('delete a user; their sessions stop working')
    .action(async (username: string) => {
      await withDatabase(ctx, async (db) => {
        const gone = await deleteUser(db, { username })
        if (gone === undefined) throw fail(`no user ${username}`)
        ctx.out(`removed ${username}`)
      })
    })

  users
    .command('passwd <username>')
    .description("set a user's password; asked for, or read from stdin")
    .action(async (username: string) => {
      const password = await askPassword()
      await withDatabase(ctx, async (db) => {
        if (!(await setPassword(db, username, password))) throw fail(`no user ${username}`)
        ctx.out(`password changed for ${username}`)
      })
    })
}
