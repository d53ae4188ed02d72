/**
 * The one error catalog of overlord-ts. Every error we raise carries a stable `code`
 * (`TRK_ERR_*`, `TEE_ERR_*`, `CMP_ERR_*`, `DB_ERR_*`), an optional HTTP status or
 * WebSocket close code, and the `cause` it wraps.
 */
export class OverlordError extends Error {
  readonly code: string
  readonly status: number | undefined
  readonly closeCode: number | undefined

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; status?: number; closeCode?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'OverlordError'
    this.code = code
    this.status = options.status
    this.closeCode = options.closeCode
  }
}

/** Normalises whatever a `catch` received into an `Error`, once, at the catch site. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value
  if (typeof value === 'string') return new Error(value)
  try {
    return new Error(JSON.stringify(value))
  } catch {
    return new Error(String(value))
  }
}

/** Error codes, in one place so logs and tests can match on them. */
export const ERR = {
  BAD_FRAME: 'TRK_ERR_BAD_FRAME',
  UNAUTHORIZED: 'TRK_ERR_UNAUTHORIZED',
  READ_ONLY: 'TRK_ERR_READ_ONLY',
  BAD_REQUEST: 'TRK_ERR_BAD_REQUEST',
  NOT_FOUND: 'TRK_ERR_NOT_FOUND',
  CONFIG: 'TRK_ERR_CONFIG',
  /** A server could not listen for a reason other than its configuration (see cli/listen-error.ts). */
  LISTEN: 'TRK_ERR_LISTEN',
  DB_UNAVAILABLE: 'DB_ERR_UNAVAILABLE',
  DB_OVERFLOW: 'DB_ERR_OVERFLOW',
  DB_QUERY: 'DB_ERR_QUERY',
  /** A database this tracker must not, or cannot correctly, write (role guard, schema check). */
  DB_SCHEMA: 'DB_ERR_SCHEMA',
  /** `cutover flip`/`rollback` refused or failed a step (nothing half-switched is left behind). */
  CUTOVER: 'CMP_ERR_CUTOVER',
  /** `NATS_URL` is set but the bus cannot be reached or has no JetStream (issue 11). */
  BUS_UNAVAILABLE: 'TRK_ERR_BUS_UNAVAILABLE',
  TEE_OVERFLOW: 'TEE_ERR_OVERFLOW',
  TEE_UPSTREAM: 'TEE_ERR_UPSTREAM',
  TEE_CAPTURE: 'TEE_ERR_CAPTURE',
  CMP_BACKEND: 'CMP_ERR_BACKEND',
  CMP_RULES: 'CMP_ERR_RULES',
} as const
