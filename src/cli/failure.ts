import { CommanderError } from 'commander'
import { ERR, OverlordError } from '../protocol/errors.ts'
import { EXIT, VERDICT_CODE } from './program.ts'

/** How a failed command ends: its exit code, and the one line stderr gets. */
export interface Failure {
  exitCode: number
  /** The line for stderr; undefined when commander has printed its usage error already. */
  line: string | undefined
  /** A fault of ours rather than a mistake of the user's or an unreachable peer: log its stack. */
  internal: boolean
}

/** errno names (ENOENT, ECONNREFUSED, EADDRINUSE…), undici's and a bad URL: the user's input or environment. */
const OUTSIDE_CODE = /^(E[A-Z0-9]+|UND_ERR_[A-Z_]+|ERR_INVALID_URL)$/
/** A PostgreSQL error (SQLSTATE code and severity): the server answered, the request was refused. */
const isPgError = (e: { code?: unknown; severity?: unknown }): boolean =>
  typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string'

interface ErrorLike {
  message?: unknown
  code?: unknown
  cause?: unknown
  errors?: unknown
  severity?: unknown
  input?: unknown
}

/** The errors of a `cause` chain, outermost first, at most `limit` deep. */
function chain(err: unknown, limit = 4): ErrorLike[] {
  const out: ErrorLike[] = []
  for (let e = err; typeof e === 'object' && e !== null && out.length < limit; e = (e as ErrorLike).cause) {
    out.push(e as ErrorLike)
  }
  return out
}

/** Userinfo in a URL may be a password: never print it. */
const redact = (text: string): string => text.replace(/\/\/[^/@\s]*@/g, '//…@')

function messageOf(e: ErrorLike): string {
  let text = typeof e.message === 'string' ? e.message : ''
  // net's AggregateError (a refused connection tried over IPv4 and IPv6) has no message of its own.
  if (text === '' && Array.isArray(e.errors)) text = messageOf((e.errors[0] ?? {}) as ErrorLike)
  if (text === '' && typeof e.code === 'string') text = e.code
  if (e.code === 'ERR_INVALID_URL' && typeof e.input === 'string') text = `${text}: ${e.input}`
  return redact(text.replace(/\s*\n\s*/g, ' ').trim())
}

/**
 * The messages of a cause chain on one line, each said once. A configuration error (TRK_ERR_CONFIG)
 * names the mistake and its fix completely: its cause stays on the error, out of the line.
 */
function summary(err: unknown): string {
  let line = ''
  for (const e of chain(err)) {
    const text = messageOf(e)
    if (text !== '' && !line.includes(text)) line = line === '' ? text : `${line}: ${text}`
    if (e instanceof OverlordError && e.code === ERR.CONFIG) break
  }
  return line === '' ? String(err) : line
}

/**
 * Decides how a command failure ends (README "Exit codes"): a verdict exits with its own code and
 * prints its line; a usage error (printed by commander) and any other error exit 2; an error from
 * our catalog, the file system, the network or the database is one `overlord-ts: …` line; anything
 * else is a bug, whose stack is logged before its one-line summary.
 */
export function describeFailure(err: unknown): Failure {
  if (err instanceof CommanderError) {
    if (err.code === VERDICT_CODE) return { exitCode: err.exitCode, line: err.message, internal: false }
    // Help and version exit 0; usage errors exit 2, never 1, which means "mismatch".
    return { exitCode: err.exitCode === 0 ? 0 : EXIT.ERROR, line: undefined, internal: false }
  }
  const outside = chain(err).some(
    (e) =>
      e instanceof OverlordError || (typeof e.code === 'string' && OUTSIDE_CODE.test(e.code)) || isPgError(e),
  )
  if (outside) return { exitCode: EXIT.ERROR, line: `overlord-ts: ${summary(err)}`, internal: false }
  return {
    exitCode: EXIT.ERROR,
    line: `overlord-ts: internal error: ${summary(err)} (a bug; its stack is logged above)`,
    internal: true,
  }
}
