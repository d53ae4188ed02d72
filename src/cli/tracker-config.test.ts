import { describe, expect, it } from 'vitest'
import { DEFAULT_PORT, PRIMARY_PORT, PRIMARY_ROLE_PORT, trackerConfigFromEnv } from './tracker-config.ts'

describe('trackerConfigFromEnv', () => {
  it('reads the legacy names and defaults the database name to dereth_ts', () => {
    const c = trackerConfigFromEnv({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432',
      SHARED_SECRET: 's',
      SHARED_SECRET_LEGACY: 'old',
      SKIP_SCHEMA_INIT: 'true',
      BUILD_VERSION: '2026.11.22.1200-abc1234',
      PORT: '9000',
    })
    expect(new URL(c.tracker.databaseUrl!).pathname).toBe('/dereth_ts')
    expect(c.createDatabase).toBe('dereth_ts')
    expect(c.port).toBe(9000)
    expect(c.tracker).toMatchObject({
      sharedSecret: 's',
      sharedSecretLegacy: 'old',
      skipSchemaInit: true,
      readOnly: false,
    })
    expect(c.tracker.pluginSideEffects).toBe(false)
  })

  it("refuses to write into the primary's database, but may read it", () => {
    expect(() => trackerConfigFromEnv({ DATABASE_URL: 'postgres://h/dereth' })).toThrow(/refusing to write/)
    const ro = trackerConfigFromEnv({ DATABASE_URL: 'postgres://h/dereth', READ_ONLY: 'true' })
    expect(ro.tracker.readOnly).toBe(true)
    expect(ro.createDatabase).toBeUndefined()
  })

  it('lifts the guard on the primary database only in the primary role, which never runs DDL', () => {
    const p = trackerConfigFromEnv({ TRACKER_ROLE: 'primary', DATABASE_URL: 'postgres://h/dereth' })
    expect(p.role).toBe('primary')
    expect(p.tracker.role).toBe('primary')
    expect(p.tracker.skipSchemaInit).toBe(true)
    expect(p.createDatabase).toBeUndefined()
    expect(p.port).toBe(PRIMARY_ROLE_PORT)
    // No database named: the primary role means the primary's.
    expect(
      new URL(
        trackerConfigFromEnv({ TRACKER_ROLE: 'primary', DATABASE_URL: 'postgres://h' }).tracker.databaseUrl!,
      ).pathname,
    ).toBe('/dereth')
    expect(() => trackerConfigFromEnv({ TRACKER_ROLE: 'primary' })).toThrow(/needs DATABASE_URL/)
    expect(() =>
      trackerConfigFromEnv({
        TRACKER_ROLE: 'primary',
        DATABASE_URL: 'postgres://h/dereth',
        READ_ONLY: 'true',
      }),
    ).toThrow(/unset READ_ONLY/)
    expect(() => trackerConfigFromEnv({ TRACKER_ROLE: 'writer' })).toThrow(/bad TRACKER_ROLE: writer/)
    // The old override is refused by name rather than silently ignored.
    expect(() =>
      trackerConfigFromEnv({ DATABASE_URL: 'postgres://h/dereth', ALLOW_PRIMARY_DATABASE_WRITES: 'true' }),
    ).toThrow(/only TRACKER_ROLE=primary/)
    expect(trackerConfigFromEnv({}).role).toBe('shadow')
  })

  it('uses the embedded database when no DATABASE_URL is given', () => {
    const c = trackerConfigFromEnv({})
    expect(c.tracker.databaseUrl).toBeUndefined()
    expect(c.tracker.dataDir).toBe('.data/pglite')
    expect(c.tracker.sharedSecret).toBeUndefined()
  })

  it('reads INVENTORY_TIMEOUT_MS as a positive integer, refusing anything else', () => {
    expect(trackerConfigFromEnv({}).tracker.inventoryTimeoutMs).toBeUndefined()
    expect(trackerConfigFromEnv({ INVENTORY_TIMEOUT_MS: '2500' }).tracker.inventoryTimeoutMs).toBe(2500)
    for (const bad of ['0', '-5', '1.5', 'soon'])
      expect(() => trackerConfigFromEnv({ INVENTORY_TIMEOUT_MS: bad })).toThrow(/INVENTORY_TIMEOUT_MS/)
  })

  it("listens on 8766 by default, never on the primary's 8765", () => {
    const c = trackerConfigFromEnv({})
    expect(c.port).toBe(8766)
    expect(DEFAULT_PORT).toBe(8766)
    expect(c.port).not.toBe(PRIMARY_PORT)
    expect(trackerConfigFromEnv({ PORT: '8765' }).port).toBe(8765)
  })

  it('reads the Discord webhook but leaves alert delivery off unless DISCORD_ALERTS_ENABLED', () => {
    const hook = 'https://discord.com/api/webhooks/123/token-abc'
    const shadow = trackerConfigFromEnv({ DISCORD_ACLOG_WEBHOOK: hook })
    expect(shadow.tracker).toMatchObject({ discordWebhookUrl: hook, alertsEnabled: false })
    const live = trackerConfigFromEnv({ DISCORD_ACLOG_WEBHOOK: hook, DISCORD_ALERTS_ENABLED: 'true' })
    expect(live.tracker).toMatchObject({ discordWebhookUrl: hook, alertsEnabled: true })
  })

  it('refuses an alert enable without a usable webhook, without quoting the URL', () => {
    expect(() => trackerConfigFromEnv({ DISCORD_ALERTS_ENABLED: '1' })).toThrow(/DISCORD_ACLOG_WEBHOOK/)
    const bad = () =>
      trackerConfigFromEnv({
        DISCORD_ACLOG_WEBHOOK: 'discord.com/api/webhooks/1/sekrit-token',
        DISCORD_ALERTS_ENABLED: 'on',
      })
    expect(bad).toThrow(/http\(s\) URL/)
    expect(bad).not.toThrow(/sekrit/)
  })

  it('reads BASE_PATH (the /ts/ prefix the dashboard is served under) and refuses an unsafe one', () => {
    expect(trackerConfigFromEnv({ BASE_PATH: 'ts/', STATIC_DIR: '/srv/dashboard' }).tracker).toMatchObject({
      basePath: '/ts',
      staticDir: '/srv/dashboard',
    })
    expect(trackerConfigFromEnv({}).tracker.basePath).toBeUndefined()
    expect(() => trackerConfigFromEnv({ BASE_PATH: '/ts"><script>' })).toThrow(/bad BASE_PATH/)
  })
})
