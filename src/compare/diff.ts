import { diff, type IChange } from 'json-diff-ts'
import { parseInstant } from '../protocol/time.ts'
import { INSTANT_SHAPE } from './equality.ts'
import type { NormalizedDoc } from './normalize.ts'
import { childPath, childSignature } from './normalize.ts'
import type { CompareRules, EndpointRules, FieldRule } from './rules.ts'
import { fieldRule, matchesPattern } from './rules.ts'
import type { Difference } from './types.ts'

/** The outcome of comparing one primary document with one shadow document. */
export interface DiffOutcome {
  differences: Difference[]
  /** Leaf updates that the numeric or timestamp tolerance absorbed. */
  tolerated: number
}

function kindOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/** Whether two numbers are equal within the rule's absolute or relative tolerance. */
export function withinTolerance(p: number, s: number, abs: number, rel: number): boolean {
  const delta = Math.abs(p - s)
  return delta <= abs || delta <= rel * Math.max(Math.abs(p), Math.abs(s))
}

type Leaf =
  | { kind: 'equal' }
  | { kind: 'tolerated' }
  | { kind: 'diff'; cls: 'type_change' | 'format' | 'value'; detail?: string }

/** An instant's spelling without its digits or fraction: `dddd-dd-ddTdd:dd:dd+dd:dd`. */
const spelling = (s: string): string => s.replace(/\.\d+/, '').replace(/\d/g, 'd')

function compareLeaf(p: unknown, s: unknown, rule: FieldRule | undefined, rules: CompareRules): Leaf {
  const kp = kindOf(p)
  const ks = kindOf(s)
  if (kp !== ks) return { kind: 'diff', cls: 'type_change', detail: `${kp} → ${ks}` }
  if (typeof p === 'number' && typeof s === 'number') {
    if (p === s) return { kind: 'equal' }
    const abs = rule?.abs ?? rules.defaults.abs
    const rel = rule?.rel ?? rules.defaults.rel
    if (withinTolerance(p, s, abs, rel)) return { kind: 'tolerated' }
    return { kind: 'diff', cls: 'value', detail: `Δ=${s - p}` }
  }
  if (typeof p === 'string' && typeof s === 'string') {
    if (p === s) return { kind: 'equal' }
    const asInstant = rule?.timestamp ?? (INSTANT_SHAPE.test(p) && INSTANT_SHAPE.test(s))
    if (asInstant) {
      const tp = parseInstant(p)
      const ts = parseInstant(s)
      if (tp !== undefined && ts !== undefined) {
        const deltaMs = (ts - tp) / 1000
        if (Math.abs(deltaMs) > (rule?.toleranceMs ?? rules.defaults.toleranceMs)) {
          return { kind: 'diff', cls: 'value', detail: `Δ=${deltaMs}ms` }
        }
        // Same instant spelled differently (`Z` for `+00:00`, `.000000`, `.12`): the contract
        // fixes one spelling, so it is a difference of its own, not a tolerance.
        if (tp === ts || spelling(p) !== spelling(s)) {
          return { kind: 'diff', cls: 'format', detail: `${p} vs ${s}` }
        }
        return { kind: 'tolerated' }
      }
    }
  }
  return { kind: 'diff', cls: 'value' }
}

interface Node {
  sig: string
  path: string
  collection: boolean
  p: unknown
  s: unknown
}

const child = (v: unknown, key: string): unknown =>
  typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined

/**
 * Compares a primary and a shadow document (both normalized with the same rules) with
 * json-diff-ts, then classifies each change and applies the tolerances of `compare/rules.json`.
 */
export function compareDocs(
  primary: NormalizedDoc,
  shadow: NormalizedDoc,
  endpointRules: EndpointRules | undefined,
  rules: CompareRules,
): DiffOutcome {
  const differences: Difference[] = []
  let tolerated = 0

  const visit = (changes: readonly IChange[], parent: Node): void => {
    for (const change of changes) {
      const key = String(change.key)
      const sig = childSignature(parent.sig, key, parent.collection)
      const path = childPath(parent.path, key, parent.collection)
      const p = child(parent.p, key)
      const s = child(parent.s, key)
      if (change.type === 'REMOVE') {
        differences.push({
          path,
          signature: sig,
          class: parent.collection ? 'missing_entity' : 'missing_field',
          primary: change.value,
        })
      } else if (change.type === 'ADD') {
        differences.push({
          path,
          signature: sig,
          class: parent.collection ? 'extra_entity' : 'extra_field',
          shadow: change.value,
        })
      } else if (change.changes !== undefined) {
        if (kindOf(p) !== kindOf(s)) {
          differences.push({ path, signature: sig, class: 'type_change', primary: p, shadow: s })
          continue
        }
        const collection = Array.isArray(p) || primary.keyed.has(sig)
        visit(change.changes, { sig, path, collection, p, s })
      } else {
        const leaf = compareLeaf(change.oldValue, change.value, fieldRule(endpointRules, sig), rules)
        if (leaf.kind === 'tolerated') tolerated += 1
        else if (leaf.kind === 'diff') {
          const d: Difference = {
            path,
            signature: sig,
            class: leaf.cls,
            primary: change.oldValue,
            shadow: change.value,
          }
          if (leaf.detail !== undefined) d.detail = leaf.detail
          differences.push(d)
        }
      }
    }
  }

  const changes = diff(primary.value, shadow.value, { treatTypeChangeAsReplace: false })
  visit(changes, { sig: '', path: '', collection: false, p: primary.value, s: shadow.value })

  for (const [path, order] of primary.orders) {
    const ordered = endpointRules?.ordered ?? []
    if (!ordered.some((pattern) => matchesPattern(pattern, order.signature))) continue
    const other = shadow.orders.get(path)
    if (other === undefined) continue
    const inShadow = new Set(other.keys)
    const inPrimary = new Set(order.keys)
    const pKeys = order.keys.filter((k) => inShadow.has(k))
    const sKeys = other.keys.filter((k) => inPrimary.has(k))
    // With orderBy, only the sort fields' sequence is contract: ties may come either way.
    const pSort = order.sortOf
    const sSort = other.sortOf
    const firstDiff =
      pSort !== undefined && sSort !== undefined
        ? pKeys.findIndex((k, i) => pSort.get(k) !== sSort.get(sKeys[i]!))
        : pKeys.findIndex((k, i) => sKeys[i] !== k)
    if (firstDiff >= 0) {
      differences.push({
        path,
        signature: order.signature,
        class: 'order',
        primary: pKeys.slice(firstDiff, firstDiff + 5),
        shadow: sKeys.slice(firstDiff, firstDiff + 5),
        detail: `first out of order at position ${firstDiff}`,
      })
    }
  }
  return { differences, tolerated }
}
