import { describe, expect, it } from 'vitest'
import { trackerConfigFromEnv } from './tracker-config.ts'

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

  it('uses the embedded database when no DATABASE_URL is given', () => {
    const c = trackerConfigFromEnv({})
    expect(c.tracker.databaseUrl).toBeUndefined()
    expect(c.tracker.dataDir).toBe('.data/pglite')
    expect(c.tracker.sharedSecret).toBeUndefined()
  })
})
