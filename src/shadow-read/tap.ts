import type { IncomingMessage } from 'node:http'
import type { RawAnswer } from './judge.ts'
import { concat } from './shadow-client.ts'

const header = (res: IncomingMessage, name: string): string | undefined => {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * A copy of the primary's answer taken while it streams to the user: the proxy pipes the same
 * chunks on untouched and unhurried, this only keeps references to them. `done` is called once:
 * with the whole answer, or with undefined when it cannot be compared (cut short, over
 * `maxBytes`, a 304 with nothing to compare).
 */
export class PrimaryTap {
  readonly #maxBytes: number
  readonly #at: number
  #done: ((answer: RawAnswer | undefined) => void) | undefined

  constructor(maxBytes: number, at: number, done: (answer: RawAnswer | undefined) => void) {
    this.#maxBytes = maxBytes
    this.#at = at
    this.#done = done
  }

  #finish(answer: RawAnswer | undefined): void {
    const done = this.#done
    this.#done = undefined
    done?.(answer)
  }

  /** The answer will not come (the primary failed, or the user went away first). */
  fail(): void {
    this.#finish(undefined)
  }

  /** Follows the primary's response as it is piped to the user. */
  attach(res: IncomingMessage): void {
    const status = res.statusCode ?? 0
    if (status === 304 || Number(res.headers['content-length']) > this.#maxBytes) {
      this.fail()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > this.#maxBytes) {
        res.off('data', onData)
        chunks.length = 0
        this.fail()
        return
      }
      chunks.push(chunk)
    }
    res.on('data', onData)
    res.once('end', () => {
      if (!res.complete) return this.fail()
      this.#finish({
        status,
        contentType: header(res, 'content-type'),
        contentEncoding: header(res, 'content-encoding'),
        body: concat(chunks, size),
        at: this.#at,
      })
    })
    res.once('close', () => this.fail())
    res.once('error', () => this.fail())
  }
}
