import { LRUCache } from 'lru-cache'

export interface LoginLimiterOptions {
  /** Failed logins allowed per client address, and per username, within `windowMs`. */
  maxPerAddress?: number
  maxPerUser?: number
  windowMs?: number
  /** Addresses and usernames remembered at most (least recently failed forgotten first). */
  maxKeys?: number
}

interface Window {
  failures: number
  startedAt: number
}

/**
 * Login rate limiting by failures, per client address and per username (a fixed window each):
 * a locked key answers 429 before any password is checked, so a locked account cannot be
 * guessed at, and a user who types the right password is never counted. `@fastify/rate-limit`
 * counts every request under one key; this needs failures only, under two keys, one of them
 * from the request body.
 */
export class LoginLimiter {
  readonly #maxPerAddress: number
  readonly #maxPerUser: number
  readonly #windowMs: number
  readonly #addresses: LRUCache<string, Window>
  readonly #users: LRUCache<string, Window>

  constructor(options: LoginLimiterOptions = {}) {
    this.#maxPerAddress = options.maxPerAddress ?? 20
    this.#maxPerUser = options.maxPerUser ?? 10
    this.#windowMs = options.windowMs ?? 10 * 60_000
    const max = options.maxKeys ?? 10_000
    this.#addresses = new LRUCache({ max })
    this.#users = new LRUCache({ max })
  }

  /** Seconds until `address` and `username` may try again; 0 when they may now. */
  retryAfter(address: string, username: string, nowMs: number): number {
    const wait = Math.max(
      this.#waitMs(this.#addresses.get(address), this.#maxPerAddress, nowMs),
      this.#waitMs(this.#users.get(username), this.#maxPerUser, nowMs),
    )
    return Math.ceil(wait / 1000)
  }

  failed(address: string, username: string, nowMs: number): void {
    this.#count(this.#addresses, address, nowMs)
    this.#count(this.#users, username, nowMs)
  }

  /** A successful login clears its username's failures (not its address's). */
  succeeded(username: string): void {
    this.#users.delete(username)
  }

  #waitMs(w: Window | undefined, max: number, nowMs: number): number {
    if (w === undefined || w.failures < max) return 0
    return Math.max(0, w.startedAt + this.#windowMs - nowMs)
  }

  #count(cache: LRUCache<string, Window>, key: string, nowMs: number): void {
    const w = cache.get(key)
    if (w === undefined || nowMs - w.startedAt >= this.#windowMs)
      cache.set(key, { failures: 1, startedAt: nowMs })
    else w.failures += 1
  }
}
