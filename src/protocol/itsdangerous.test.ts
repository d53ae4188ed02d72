import { describe, expect, it } from 'vitest'
import { TimedSerializer } from './itsdangerous.ts'

// Tokens printed by Python's itsdangerous 2.1.2 (URLSafeTimedSerializer('k'), timestamp 1700000000).
const T0 = 1_700_000_000
const PY_ALICE = 'eyJ1c2VybmFtZSI6ImFsaWNlIn0.ZVPxAA.xFZ1dGi-6yRF59oM3XOSt0ekn3M'
const PY_COMPRESSED = '.eJyrViotTi3KS8xNVbJSSqQDUKoFALJxKv8.ZVPxAA.Foi0u-MlBDnwEJ4-XEew-PGMlEQ'
const PY_OTHER_SALT = 'eyJ1c2VybmFtZSI6ImFsaWNlIn0.ZVPxAA.rol0EgJE1X6HHQgiFb0wUQDJKj8'

const s = new TimedSerializer({ secretKey: 'k' })

describe('TimedSerializer (itsdangerous URLSafeTimedSerializer)', () => {
  it('mints byte for byte what Python mints, compressed or not', () => {
    expect(s.dumps({ username: 'alice' }, T0)).toBe(PY_ALICE)
    expect(s.dumps({ username: 'a'.repeat(100) }, T0)).toBe(PY_COMPRESSED)
    expect(new TimedSerializer({ secretKey: 'k', salt: 'other' }).dumps({ username: 'alice' }, T0)).toBe(
      PY_OTHER_SALT,
    )
  })

  it('reads Python tokens and reports when they were issued', () => {
    expect(s.loads(PY_ALICE, 60, T0 + 10)).toEqual({ ok: true, value: { username: 'alice' }, issuedAt: T0 })
    expect(s.loads(PY_COMPRESSED, 60, T0)).toMatchObject({ ok: true, value: { username: 'a'.repeat(100) } })
  })

  it('says why a token is refused', () => {
    expect(s.loads(PY_ALICE, 60, T0 + 61)).toEqual({ ok: false, reason: 'expired' })
    expect(s.loads(PY_ALICE, 60, T0 - 1)).toEqual({ ok: false, reason: 'expired' })
    expect(s.loads(PY_OTHER_SALT, 60, T0)).toEqual({ ok: false, reason: 'bad_signature' })
    expect(s.loads(`${PY_ALICE}x`, 60, T0)).toEqual({ ok: false, reason: 'bad_signature' })
    expect(s.loads('no-separator', 60, T0)).toEqual({ ok: false, reason: 'malformed' })
    expect(s.loads(`${PY_ALICE.replace('.', '!')}`, 60, T0)).toEqual({ ok: false, reason: 'bad_signature' })
  })
})
