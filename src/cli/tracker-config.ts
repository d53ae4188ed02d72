import { OverlordError, ERR } from '../protocol/errors.ts'
import { isHttpUrl } from '../tracker/alert-message.ts'
import { PRIMARY_DATABASE } from '../db/schema-check.ts'
import type { TrackerOptions, TrackerRole } from '../tracker/build-tracker.ts'
import { normalizeBasePath } from '../tracker/routes/base-path.ts'

/** The shadow's own database (CONTRACT.md §8); the primary's is `dereth`. */
export const SHADOW_DATABASE = 'dereth_ts'
export { PRIMARY_DATABASE } from '../db/schema-check.ts'

/** The port plan: the live Python tracker owns 8765, the shadow never defaults to it. */
export const PRIMARY_PORT = 8765
export const DEFAULT_PORT = 8766
/** Where the TypeScript tracker listens in the primary role (after `cutover flip`), beside both. */
export const PRIMARY_ROLE_PORT = 8767

/**
 * `TRACKER_ROLE`: `shadow` (the default) writes only its own database; `primary` is the tracker
 * after `cutover flip`, the writer of `dereth`, on a schema the Python tracker created.
 */
export type { TrackerRole }
const ROLES: readonly TrackerRole[] = ['shadow', 'primary']

const truthy = (v: string | undefined): boolean => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim())

/** An optional positive millisecond count from the environment; anything else refuses to start. */
function positiveMs(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const ms = Number(value)
  if (!Number.isInteger(ms) || ms <= 0) throw new OverlordError(ERR.CONFIG, `bad ${name}: ${value}`)
  return ms
}

export interface ServeConfig {
  role: TrackerRole
  tracker: TrackerOptions
  port: number
  host: string
  /** The database name to create when missing (never in read-only mode). */
  createDatabase: string | undefined
}

/**
 * Reads the legacy environment names (CONTRACT.md §9) plus `TRACKER_ROLE`, `PORT`, `HOST`,
 * `DATABASE_URL` and `DATA_DIR` into tracker options. Only the primary role writes the primary's
 * database: a shadow that could is one typo away from corrupting the live service (§10). The
 * primary role never runs DDL (`SKIP_SCHEMA_INIT` is implied: the schema is the one Python made).
 */
export function trackerConfigFromEnv(env: NodeJS.ProcessEnv): ServeConfig {
  const roleText = env.TRACKER_ROLE?.trim() || 'shadow'
  if (!(ROLES as readonly string[]).includes(roleText))
    throw new OverlordError(ERR.CONFIG, `bad TRACKER_ROLE: ${roleText} (shadow or primary)`)
  const role = roleText as TrackerRole
  if (env.ALLOW_PRIMARY_DATABASE_WRITES !== undefined)
    throw new OverlordError(
      ERR.CONFIG,
      'ALLOW_PRIMARY_DATABASE_WRITES is gone: only TRACKER_ROLE=primary writes the primary database (cutover flip)',
    )
  const readOnly = truthy(env.READ_ONLY)
  let databaseUrl = env.DATABASE_URL?.trim() || undefined
  let createDatabase: string | undefined
  if (role === 'primary') {
    if (databaseUrl === undefined)
      throw new OverlordError(ERR.CONFIG, 'TRACKER_ROLE=primary needs DATABASE_URL (the primary database)')
    if (readOnly) throw new OverlordError(ERR.CONFIG, 'TRACKER_ROLE=primary writes: unset READ_ONLY')
  }
  if (databaseUrl !== undefined) {
    const url = new URL(databaseUrl)
    if (url.pathname === '' || url.pathname === '/')
      url.pathname = `/${role === 'primary' ? PRIMARY_DATABASE : SHADOW_DATABASE}`
    databaseUrl = url.toString()
    const name = decodeURIComponent(url.pathname.slice(1))
    if (!readOnly && role === 'shadow' && name === PRIMARY_DATABASE) {
      throw new OverlordError(
        ERR.CONFIG,
        `refusing to write into the primary's database "${PRIMARY_DATABASE}": use ${SHADOW_DATABASE}, or READ_ONLY=true (only TRACKER_ROLE=primary writes it)`,
      )
    }
    // The primary's database exists (Python created it); a shadow's may be created here.
    if (!readOnly && role === 'shadow') createDatabase = name
  }
  const port = Number(env.PORT ?? (role === 'primary' ? PRIMARY_ROLE_PORT : DEFAULT_PORT))
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new OverlordError(ERR.CONFIG, `bad PORT: ${env.PORT}`)
  const discordWebhookUrl = env.DISCORD_ACLOG_WEBHOOK?.trim() || undefined
  const alertsEnabled = truthy(env.DISCORD_ALERTS_ENABLED)
  // An explicit enable that cannot be honoured is a mistake to surface, not to run quietly past.
  // The URL is never quoted: its path is the webhook's token.
  if (alertsEnabled && (discordWebhookUrl === undefined || !isHttpUrl(discordWebhookUrl)))
    throw new OverlordError(
      ERR.CONFIG,
      'DISCORD_ALERTS_ENABLED needs DISCORD_ACLOG_WEBHOOK set to an http(s) URL',
    )
  return {
    role,
    port,
    host: env.HOST ?? '127.0.0.1',
    createDatabase,
    tracker: {
      role,
      databaseUrl,
      dataDir: databaseUrl === undefined ? (env.DATA_DIR ?? '.data/pglite') : undefined,
      sharedSecret: env.SHARED_SECRET || undefined,
      sharedSecretLegacy: env.SHARED_SECRET_LEGACY || undefined,
      readOnly,
      skipSchemaInit: role === 'primary' || truthy(env.SKIP_SCHEMA_INIT),
      buildVersion: env.BUILD_VERSION,
      inventoryServiceUrl: env.INVENTORY_SERVICE_URL || undefined,
      discordWebhookUrl,
      alertsEnabled,
      inventoryTimeoutMs: positiveMs(env.INVENTORY_TIMEOUT_MS, 'INVENTORY_TIMEOUT_MS'),
      pluginSideEffects: truthy(env.PLUGIN_SIDE_EFFECTS),
      inventoryWritesEnabled: truthy(env.INVENTORY_WRITES_ENABLED),
      sessions: {
        secretKey: env.SECRET_KEY || undefined,
        cookieName: env.SESSION_COOKIE_NAME || undefined,
        salt: env.SESSION_SALT || undefined,
        field: env.SESSION_FIELD || undefined,
      },
      serverHealthUrl: env.SERVER_HEALTH_URL || undefined,
      staticDir: env.STATIC_DIR || undefined,
      basePath: normalizeBasePath(env.BASE_PATH),
      serverName: env.SERVER_NAME || undefined,
      browserCoalesceMs: env.BROWSER_COALESCE_MS === undefined ? undefined : Number(env.BROWSER_COALESCE_MS),
      natsUrl: env.NATS_URL?.trim() || undefined,
      natsName: env.NATS_NAME?.trim() || undefined,
    },
  }
}
