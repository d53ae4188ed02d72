import { hashPassword } from '../protocol/passwords.ts'
import type { Db } from './pool.ts'
import { isoRows } from './read-telemetry.ts'

/** A row of `users` (CONTRACT.md §8) as the admin API shows it: never the hash. */
export interface User {
  id: number
  username: string
  is_admin: boolean
  created_at: string
}

export interface UserWithHash extends User {
  password_hash: string
}

export interface NewUser {
  username: string
  password: string
  isAdmin?: boolean
}

const COLUMNS = 'id, username, is_admin, created_at'
const UNIQUE_VIOLATION = '23505'

/** True when `err` is the unique violation of `users.username`. */
export function isDuplicateUser(err: unknown): boolean {
  return (err as { code?: string }).code === UNIQUE_VIOLATION
}

/** Creates a user with a bcrypt hash of `password`; a taken name throws (see {@link isDuplicateUser}). */
export async function createUser(db: Db, user: NewUser): Promise<User> {
  const hash = await hashPassword(user.password)
  const { rows } = await db.query<User>(
    `INSERT INTO users (username, password_hash, is_admin) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
    [user.username, hash, user.isAdmin ?? false],
  )
  return isoRows(rows, ['created_at'])[0] as User
}

export async function listUsers(db: Db): Promise<User[]> {
  const { rows } = await db.query<User>(`SELECT ${COLUMNS} FROM users ORDER BY id`)
  return isoRows(rows, ['created_at'])
}

export async function findUser(db: Db, username: string): Promise<UserWithHash | undefined> {
  const { rows } = await db.query<UserWithHash>(
    `SELECT ${COLUMNS}, password_hash FROM users WHERE username = $1`,
    [username],
  )
  return isoRows(rows, ['created_at'])[0]
}

export async function findUserById(db: Db, id: number): Promise<User | undefined> {
  const { rows } = await db.query<User>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id])
  return isoRows(rows, ['created_at'])[0]
}

/** Deletes by id or name; resolves the deleted user, or undefined when there was none. */
export async function deleteUser(
  db: Db,
  which: { id: number } | { username: string },
): Promise<User | undefined> {
  const [column, value] = 'id' in which ? ['id', which.id] : ['username', which.username]
  const { rows } = await db.query<User>(`DELETE FROM users WHERE ${column} = $1 RETURNING ${COLUMNS}`, [
    value,
  ])
  return isoRows(rows, ['created_at'])[0]
}

/** Sets a new password; false when there is no such user. */
export async function setPassword(db: Db, username: string, password: string): Promise<boolean> {
  const hash = await hashPassword(password)
  const { rowCount } = await db.query('UPDATE users SET password_hash = $2 WHERE username = $1', [
    username,
    hash,
  ])
  return (rowCount ?? 0) > 0
}
