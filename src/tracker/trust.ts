import { BlockList, isIP } from 'node:net'

const PRIVATE = new BlockList()
PRIVATE.addSubnet('127.0.0.0', 8, 'ipv4')
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4')
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4')
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4')
PRIVATE.addAddress('::1', 'ipv6')
PRIVATE.addSubnet('fc00::', 7, 'ipv6')

/** True for loopback and private (RFC 1918, RFC 4193) addresses, IPv4-mapped forms included. */
export function isPrivateAddress(address: string | undefined): boolean {
  if (address === undefined) return false
  const mapped = address.startsWith('::ffff:') ? address.slice(7) : address
  const family = isIP(mapped)
  if (family === 0) return false
  return PRIVATE.check(mapped, family === 4 ? 'ipv4' : 'ipv6')
}

/**
 * Internal trust (CONTRACT.md §5): a loopback or private peer **and** no `X-Forwarded-For`.
 * A proxied request always carries that header, so a private range alone is never trusted.
 */
export function isInternalRequest(
  remoteAddress: string | undefined,
  headers: Record<string, unknown>,
): boolean {
  return headers['x-forwarded-for'] === undefined && isPrivateAddress(remoteAddress)
}
