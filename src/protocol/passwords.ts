import bcrypt from 'bcrypt'

/**
 * Password hashes compatible with Python's `bcrypt` (CONTRACT.md §5): `$2b$`, cost 12 as
 * `bcrypt.gensalt()` makes them. The native `bcrypt` binding hashes on libuv's thread pool, so a
 * login never holds the event loop that ingest and fan-out run on (a pure-JS hash at cost 12
 * would, for a quarter of a second).
 */
export const BCRYPT_COST = 12

/**
 * bcrypt reads at most 72 bytes of a password; Python's bcrypt 3 silently truncates and newer
 * releases refuse. Refusing longer passwords at creation keeps both sides meaning the same thing.
 */
export const MAX_PASSWORD_BYTES = 72

export function passwordTooLong(password: string): boolean {
  return Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES
}

export function hashPassword(password: string, cost = BCRYPT_COST): Promise<string> {
  return bcrypt.hash(password, cost)
}

/** True when `password` matches `hash`; a malformed hash is a mismatch, never a throw. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return false
  try {
    return await bcrypt.compare(password, hash)
  } catch {
    return false
  }
}
