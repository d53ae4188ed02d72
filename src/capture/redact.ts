/** What replaces a secret in a capture. */
export const REDACTED = '[redacted]'

/** Secrets shorter than this are not redacted by substring: they would shred ordinary text. */
const MIN_SECRET_LENGTH = 4

/**
 * A substring redactor for capture lines: every known secret (plugin secrets the tee saw, its own
 * secrets, cookie values) is replaced wherever it appears, raw or JSON-escaped, so a secret can never
 * land in a fixture even if a frame or a response carried it.
 */
export class Redactor {
  readonly #needles = new Set<string>()

  constructor(secrets: Iterable<string | undefined> = []) {
    for (const s of secrets) this.add(s)
  }

  /** Adds a secret to redact from now on. */
  add(secret: string | undefined): void {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH) return
    this.#needles.add(secret)
    const escaped = JSON.stringify(secret).slice(1, -1)
    if (escaped !== secret) this.#needles.add(escaped)
    const encoded = encodeURIComponent(secret)
    if (encoded !== secret) this.#needles.add(encoded)
  }

  /** The line with every known secret replaced. */
  apply(line: string): string {
    let out = line
    for (const needle of this.#needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED)
    return out
  }
}

/** A URL safe to record: no userinfo, no query string (which may carry `?secret=`), no fragment. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return REDACTED
  }
}
