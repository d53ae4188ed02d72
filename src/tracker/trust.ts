import { BlockList, isIP } from 'node:net'

const PRIVATE = new BlockList()
PRIVATE.addSubnet('127.0.0.0', 8, 'ipv4')
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4')
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4')
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4')
PRIVATE.addAddress('::1', 'ipv6')
PRIVATE.addSubnet('fc00::', 7, 'ipv6')

/**
 * Headers a proxy adds on behalf of someone else (RFC 7239 `Forwarded`, and the de-facto
 * `X-Forwarded-*` and `X-Real-IP`), as Node names them (lower case).
 */
export const FORWARDING_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
] as const

/** True for loopback and private (RFC 1918, RFC 4193) addresses, IPv4-mapped forms included. */
export function isPrivateAddress(address: string | undefined): boolean {
  if (address === undefined) return false
  const mapped = address.startsWith('::ffff:') ? address.slice(7) : address
  const family = isIP(mapped)
  if (family === 0) return false
  return PRIVATE.check(mapped, family === 4 ? 'ipv4' : 'ipv6')
}

/**
 * Internal trust (CONTRACT.md §5): a loopback or private peer **and** no forwarding header.
 * A proxied request comes from the proxy's private address on behalf of anyone, so any sign of
 * forwarding refuses trust, whatever the header says; a private range alone is never trusted.
 */
export function isInternalRequest(
  remoteAddress: string | undefined,
  headers: Record<string, unknown>,
): boolean {
  for (const name of FORWARDING_HEADERS) if (headers[name] !== undefined) return false
  return isPrivateAddress(remoteAddress)
}
