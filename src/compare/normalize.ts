import type { EndpointRules } from './rules.ts'

/** A keyed array's entity keys in the order the backend sent them. */
export interface EntityOrder {
  signature: string
  keys: string[]
  /** With `orderBy`: each key's sort tuple, the part of the order the contract fixes. */
  sortOf?: Map<string, string>
}

/** A document prepared for the diff: keyed arrays became objects keyed by identity. */
export interface NormalizedDoc {
  value: unknown
  /** Concrete path of each keyed array → its original order. */
  orders: Map<string, EntityOrder>
  /** Signatures that are keyed arrays (now objects whose children are entities). */
  keyed: ReadonlySet<string>
  /** How many nodes each signature has: the denominator of mismatch and noise rates. */
  observations: Map<string, number>
}

/** Child signature and path; array elements and entities are `[]` in the signature. */
export function childSignature(sig: string, key: string, collection: boolean): string {
  if (collection) return `${sig}[]`
  return sig === '' ? key : `${sig}.${key}`
}

export function childPath(path: string, key: string, collection: boolean): string {
  if (collection) return `${path}[${key}]`
  return path === '' ? key : `${path}.${key}`
}

function keyPart(value: unknown): string {
  // Identity must survive float noise in coordinates (portals are keyed by position).
  if (typeof value === 'number') return String(Number(value.toFixed(6)))
  if (value === undefined) return '∅'
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/**
 * Rewrites a response body for the diff (CONTRACT.md §4 "player lists are sorted by
 * character_name" makes order a separate question from content): every array listed in
 * `rules.keys` becomes an object keyed by its identity fields, its order is kept aside.
 */
export function normalize(value: unknown, rules: EndpointRules | undefined): NormalizedDoc {
  const keys = rules?.keys ?? {}
  const keyed = new Set(Object.keys(keys))
  const orders = new Map<string, EntityOrder>()
  const observations = new Map<string, number>()
  const seen = (sig: string) => observations.set(sig, (observations.get(sig) ?? 0) + 1)

  const walk = (node: unknown, sig: string, path: string): unknown => {
    if (Array.isArray(node)) {
      const identity = keys[sig]
      if (identity !== undefined) {
        const out: Record<string, unknown> = {}
        const order: string[] = []
        const sortBy = rules?.orderBy?.[sig]
        const sortOf = sortBy === undefined ? undefined : new Map<string, string>()
        for (const element of node) {
          const el = element as Record<string, unknown> | null
          let key = identity.map((f) => keyPart(el?.[f])).join('|')
          if (Object.hasOwn(out, key)) {
            let n = 2
            while (Object.hasOwn(out, `${key}#${n}`)) n += 1
            key = `${key}#${n}`
          }
          order.push(key)
          sortOf?.set(key, sortBy!.map((f) => keyPart(el?.[f])).join('|'))
          const childSig = childSignature(sig, key, true)
          seen(childSig)
          out[key] = walk(element, childSig, childPath(path, key, true))
        }
        orders.set(path, { signature: sig, keys: order, ...(sortOf === undefined ? {} : { sortOf }) })
        return out
      }
      return node.map((element, i) => {
        const childSig = childSignature(sig, String(i), true)
        seen(childSig)
        return walk(element, childSig, childPath(path, String(i), true))
      })
    }
    if (typeof node === 'object' && node !== null) {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(node)) {
        const childSig = childSignature(sig, k, false)
        seen(childSig)
        out[k] = walk(v, childSig, childPath(path, k, false))
      }
      return out
    }
    return node
  }

  return { value: walk(value, '', ''), orders, keyed, observations }
}
