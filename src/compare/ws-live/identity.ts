import { createHash } from 'node:crypto'
import { parseInstant } from '../../protocol/time.ts'
import type { Difference, TriagedDifference } from '../types.ts'
import type { Received } from './types.ts'

/**
 * What a `/ws/live` message is (its type and identity) and how two copies of it differ, field by
 * field (pure).
 */

const MAX_DIFFS_PER_MESSAGE = 50
const URL_LABEL = '/ws/live'

/** A message's own property: a key on the prototype is no field of a message. */
export const own = (o: Record<string, unknown>, key: string): unknown =>
  Object.hasOwn(o, key) ? o[key] : undefined

/** A message's type: its `type` field; a message without one is telemetry (CONTRACT.md §3). */
export function messageType(msg: Record<string, unknown>): string {
  if (!Object.hasOwn(msg, 'type')) return 'telemetry'
  const t = msg.type
  return typeof t === 'string' ? t : `(${kindOf(t)})`
}

function kindOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/** Sorted-key JSON: equal values (numbers by value) give equal text. Depth is bounded on receipt. */
function canonical(v: unknown): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v) ?? 'null'
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`
}

/**
 * A message's identity: (type, character_name, timestamp) when it has a timestamp, else
 * (type, character_name, hash of the content but `type`), so identical frames pair and a
 * telemetry frame pairs whether or not it carries `type`.
 */
export function identityOf(r: Received): string {
  if (r.id !== undefined) return r.id
  const { msg } = r
  const name = own(msg, 'character_name')
  const ts = own(msg, 'timestamp')
  const head = `${messageType(msg)}\u0000${typeof name === 'string' ? name : ''}\u0000`
  if (typeof ts === 'string' || typeof ts === 'number') r.id = `${head}@${ts}`
  else {
    const { type: _type, ...rest } = msg
    r.id = `${head}#${createHash('sha1').update(canonical(rest)).digest('hex').slice(0, 16)}`
  }
  return r.id
}

/** `Larsson@2026-…` or `Larsson#3f2a…`: where a message sits in a difference's path. */
export const labelOf = (r: Received): string => identityOf(r).split('\u0000').slice(1).join('')
export const kinOf = (r: Received): string => identityOf(r).split('\u0000').slice(0, 2).join('\u0000')

/**
 * Field-by-field comparison of two JSON values: exactly equal, numbers by value; an instant spelled
 * two ways is a `format` difference. At most {@link MAX_DIFFS_PER_MESSAGE} differences are kept.
 */
export function diffJson(p: unknown, s: unknown, path: string, signature: string, out: Difference[]): void {
  if (out.length >= MAX_DIFFS_PER_MESSAGE) return
  const kp = kindOf(p)
  const ks = kindOf(s)
  if (kp !== ks) {
    out.push({ path, signature, class: 'type_change', primary: p, shadow: s, detail: `${kp} → ${ks}` })
    return
  }
  if (kp === 'array') {
    const a = p as unknown[]
    const b = s as unknown[]
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const at = `${path}[${i}]`
      const sig = `${signature}[]`
      if (i >= b.length) out.push({ path: at, signature: sig, class: 'missing_entity', primary: a[i] })
      else if (i >= a.length) out.push({ path: at, signature: sig, class: 'extra_entity', shadow: b[i] })
      else diffJson(a[i], b[i], at, sig, out)
    }
    return
  }
  if (kp === 'object') {
    const a = p as Record<string, unknown>
    const b = s as Record<string, unknown>
    const child = (k: string) => (path === '' ? k : `${path}.${k}`)
    const childSig = (k: string) => (signature === '' ? k : `${signature}.${k}`)
    for (const k of Object.keys(a)) {
      if (!Object.hasOwn(b, k)) {
        out.push({ path: child(k), signature: childSig(k), class: 'missing_field', primary: a[k] })
      } else diffJson(a[k], b[k], child(k), childSig(k), out)
    }
    for (const k of Object.keys(b)) {
      if (!Object.hasOwn(a, k)) {
        out.push({ path: child(k), signature: childSig(k), class: 'extra_field', shadow: b[k] })
      }
    }
    return
  }
  if (p === s) return
  // Not equality.ts's sameJson: it wants a time of day, no padding, and compares in ms, which would
  // turn some of these `format` differences into `value` ones (a date-only spelling, a padded one).
  const sameInstant =
    typeof p === 'string' &&
    typeof s === 'string' &&
    parseInstant(p) !== undefined &&
    parseInstant(p) === parseInstant(s)
  out.push({ path, signature, class: sameInstant ? 'format' : 'value', primary: p, shadow: s })
}

/** A difference found on `/ws/live`, with its verdict: a mismatch is hard, an explained one soft. */
export const triaged = (d: Difference, status: 'mismatch' | 'explained'): TriagedDifference => ({
  ...d,
  status,
  severity: status === 'mismatch' ? 'hard' : 'soft',
  url: URL_LABEL,
})
