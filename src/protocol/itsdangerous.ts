import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { deflateSync, inflateSync } from 'node:zlib'

/**
 * The token format of Python's itsdangerous 2.x `URLSafeTimedSerializer` with its defaults
 * (CONTRACT.md §5): `[.]payload.timestamp.signature`, each part URL-safe base64 without padding;
 * the payload is compact JSON, zlib-compressed (and marked by a leading `.`) when that is shorter;
 * the timestamp is the big-endian Unix second; the signature is HMAC-SHA1 under the key
 * `SHA1(salt + "signer" + secret)` ("django-concat") over everything before it.
 *
 * Written here rather than taken from npm: the one port there (`itsdangerous.js`, a single
 * release) is not a maintained library, and the format is small and fixed. It is proven against
 * the real Python library both ways in `test/sessions-python.test.ts`.
 */
export interface TimedSerializerOptions {
  secretKey: string
  /** itsdangerous' default is `itsdangerous`. */
  salt?: string
}

/** Why a token was refused; the caller answers 401 for every one of them. */
export type TokenRefusal = 'malformed' | 'bad_signature' | 'expired' | 'bad_payload'

export type TokenResult = { ok: true; value: unknown; issuedAt: number } | { ok: false; reason: TokenRefusal }

const SEP = '.'
const B64URL = /^[A-Za-z0-9_-]*$/

const b64encode = (bytes: Buffer): string => bytes.toString('base64url')

function b64decode(text: string): Buffer | undefined {
  // Buffer.from ignores what is not base64: check the alphabet first, as Python's decoder refuses it.
  if (!B64URL.test(text) || text.length % 4 === 1) return undefined
  return Buffer.from(text, 'base64url')
}

/** `int.to_bytes(n, (n.bit_length() + 7) // 8, "big")`, as itsdangerous encodes the timestamp. */
function intToBytes(n: number): Buffer {
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256)
  return Buffer.from(bytes)
}

function bytesToInt(bytes: Buffer): number {
  let n = 0
  for (const b of bytes) n = n * 256 + b
  return n
}

/** itsdangerous' `URLSafeTimedSerializer(secret_key, salt)`: `dumps` and `loads(max_age=…)`. */
export class TimedSerializer {
  readonly #key: Buffer

  constructor(options: TimedSerializerOptions) {
    const salt = options.salt ?? 'itsdangerous'
    this.#key = createHash('sha1').update(salt).update('signer').update(options.secretKey).digest()
  }

  #signature(value: string): Buffer {
    return createHmac('sha1', this.#key).update(value).digest()
  }

  /** A token for `value` issued at `nowSeconds` (Unix time, truncated as Python's `int(time())`). */
  dumps(value: unknown, nowSeconds: number): string {
    const json = Buffer.from(JSON.stringify(value), 'utf8')
    const compressed = deflateSync(json)
    // itsdangerous compresses only when it saves more than the one byte the marker costs.
    const payload = compressed.length < json.length - 1 ? `.${b64encode(compressed)}` : b64encode(json)
    const signed = `${payload}${SEP}${b64encode(intToBytes(Math.floor(nowSeconds)))}`
    return `${signed}${SEP}${b64encode(this.#signature(signed))}`
  }

  /** Verifies and decodes a token no older than `maxAgeSeconds` at `nowSeconds`. */
  loads(token: string, maxAgeSeconds: number, nowSeconds: number): TokenResult {
    const sigAt = token.lastIndexOf(SEP)
    if (sigAt <= 0) return { ok: false, reason: 'malformed' }
    const signed = token.slice(0, sigAt)
    const given = b64decode(token.slice(sigAt + 1))
    const expected = this.#signature(signed)
    if (given === undefined || given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'bad_signature' }
    const tsAt = signed.lastIndexOf(SEP)
    if (tsAt <= 0) return { ok: false, reason: 'malformed' }
    const tsBytes = b64decode(signed.slice(tsAt + 1))
    if (tsBytes === undefined || tsBytes.length > 6) return { ok: false, reason: 'malformed' }
    const issuedAt = bytesToInt(tsBytes)
    const age = Math.floor(nowSeconds) - issuedAt
    // A token from the future is refused too, as itsdangerous does.
    if (age > maxAgeSeconds || age < 0) return { ok: false, reason: 'expired' }
    const value = decodePayload(signed.slice(0, tsAt))
    if (value === undefined) return { ok: false, reason: 'bad_payload' }
    return { ok: true, value: value.json, issuedAt }
  }
}

/** The payload part; undefined when it is not base64, not zlib (when marked) or not JSON. */
function decodePayload(part: string): { json: unknown } | undefined {
  const compressed = part.startsWith(SEP)
  const bytes = b64decode(compressed ? part.slice(1) : part)
  if (bytes === undefined) return undefined
  try {
    // Only a holder of the key can sign a payload, so the inflate bound is a backstop.
    const text = (compressed ? inflateSync(bytes, { maxOutputLength: 1 << 20 }) : bytes).toString('utf8')
    return { json: JSON.parse(text) }
  } catch {
    return undefined
  }
}
