/**
 * Errors worth retrying: the server went away or is starting, or a concurrency conflict.
 * Everything else (bad data, bad SQL) surfaces instead of looping forever.
 */
const TRANSIENT_SQLSTATE_CLASSES = ['08', '53', '57', '58'] // connection, resources, operator intervention, system
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03']) // serialization, deadlock, lock not available
const TRANSIENT_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
])
const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Client was closed',
]

/** True when retrying the same statement later may succeed. */
export function isTransientDbError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] }
  if (Array.isArray(e?.errors) && e.errors.some(isTransientDbError)) return true // AggregateError from net
  const code = typeof e?.code === 'string' ? e.code : ''
  if (TRANSIENT_ERRNOS.has(code) || TRANSIENT_SQLSTATES.has(code)) return true
  if (code.length === 5 && TRANSIENT_SQLSTATE_CLASSES.includes(code.slice(0, 2))) return true
  const message = typeof e?.message === 'string' ? e.message : ''
  return TRANSIENT_MESSAGES.some((m) => message.includes(m))
}

/** Exponential backoff with full jitter, capped. */
function backoffMs(attempt: number, baseMs = 100, capMs = 5_000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt)
}

/**
 * Runs `task`, retrying transient database errors with backoff until `deadlineMs` has passed;
 * anything else, or the last failure, is thrown. For start-up, when the database may still be
 * coming up beside us.
 */
export async function retryTransient<T>(
  task: () => Promise<T>,
  onRetry: (err: unknown, attempt: number) => void,
  deadlineMs = 60_000,
): Promise<T> {
  const start = Date.now()
  for (let attempt = 0; ; attempt++) {
    try {
      return await task()
    } catch (err) {
      if (!isTransientDbError(err) || Date.now() - start > deadlineMs) throw err
      onRetry(err, attempt)
      await new Promise((r) => setTimeout(r, 250 + backoffMs(attempt, 250, 5_000)))
    }
  }
}
