import { describe, expect, it } from 'vitest'
import { isInternalRequest, isPrivateAddress } from './trust.ts'

describe('internal trust', () => {
  it('knows loopback and private ranges, mapped forms included', () => {
    for (const a of [
      '127.0.0.1',
      '::1',
      '::ffff:127.0.0.1',
      '10.1.2.3',
      '172.20.0.5',
      '192.168.1.9',
      'fd00::1',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true)
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '::ffff:1.2.3.4', '2001:db8::1', 'nonsense', undefined]) {
      expect(isPrivateAddress(a), String(a)).toBe(false)
    }
  })

  it('never trusts a private peer that forwards for someone else', () => {
    expect(isInternalRequest('127.0.0.1', {})).toBe(true)
    expect(isInternalRequest('127.0.0.1', { 'x-forwarded-for': '8.8.8.8' })).toBe(false)
    expect(isInternalRequest('8.8.8.8', {})).toBe(false)
  })

  it('refuses trust when any forwarding header is present, whatever its value', () => {
    const proxied = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip']
    for (const name of proxied) {
      for (const value of ['127.0.0.1', 'for=127.0.0.1', '', ['10.0.0.1', '10.0.0.2']]) {
        expect(isInternalRequest('127.0.0.1', { [name]: value }), `${name}: ${value}`).toBe(false)
        expect(isInternalRequest('::1', { host: 'localhost', [name]: value }), name).toBe(false)
      }
    }
  })
})
