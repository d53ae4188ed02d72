/**
 * Bounds on JSON values that came from outside, checked before anything recurses into them
 * (`JSON.stringify` on the fan-out path, a JSONB parameter, the combat-stats tree walk).
 */

/** Nesting the tracker accepts in a frame (chosen: the plugin's deepest frames nest about 5). */
export const MAX_JSON_DEPTH = 32

/**
 * True when `root` nests objects or arrays deeper than `max` (the root object is depth 1).
 * Iterative, so a hostile value cannot exhaust the stack while being measured.
 */
export function exceedsDepth(root: unknown, max: number = MAX_JSON_DEPTH): boolean {
  if (typeof root !== 'object' || root === null) return false
  const values: object[] = [root]
  const depths: number[] = [1]
  while (values.length > 0) {
    const value = values.pop() as Record<string, unknown>
    const depth = depths.pop() as number
    for (const key in value) {
      const child = value[key]
      if (typeof child !== 'object' || child === null) continue
      if (depth >= max) return true
      values.push(child)
      depths.push(depth + 1)
    }
  }
  return false
}

/** Frames from this size on have their nesting measured on the text, before JSON.parse. */
export const PRESCAN_BYTES = 64 * 1024

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * True when JSON text nests deeper than `max`, measured on the characters (strings skipped).
 * Parsing 8 MiB of `[[[[…` costs the event loop most of a second, so a large frame is measured
 * before it is parsed; small frames are parsed first and measured with {@link exceedsDepth}.
 */
export function textExceedsDepth(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--
  }
  return false
}

/**
 * Text PostgreSQL can store: `text` and `jsonb` refuse NUL, and `jsonb` refuses the `\ud800`
 * escape `JSON.stringify` writes for a lone surrogate. NULs are removed and lone surrogates
 * become U+FFFD.
 */
export function storableText(s: string): string {
  const noNul = s.includes('\u0000') ? s.replaceAll('\u0000', '') : s
  return noNul.isWellFormed() ? noNul : noNul.toWellFormed()
}

const needsCleaning = (s: string): boolean => s.includes('\u0000') || !s.isWellFormed()

/**
 * A copy of a depth-bounded JSON value that `jsonb` accepts: every string and key through
 * {@link storableText}. Objects are built without a prototype, so a `__proto__` key stays data.
 * Returns the value itself when nothing needs cleaning.
 */
export function toStorableJson(value: unknown): unknown {
  return isClean(value) ? value : clean(value)
}

function isClean(value: unknown): boolean {
  if (typeof value === 'string') return !needsCleaning(value)
  if (typeof value !== 'object' || value === null) return true
  if (Array.isArray(value)) return value.every(isClean)
  for (const key in value) {
    if (needsCleaning(key) || !isClean((value as Record<string, unknown>)[key])) return false
  }
  return true
}

function clean(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value)
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return value.map(clean)
  const out = Object.create(null) as Record<string, unknown>
  for (const key in value) out[storableText(key)] = clean((value as Record<string, unknown>)[key])
  return out
}
