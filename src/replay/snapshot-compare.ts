import { compareDocs } from '../compare/diff.ts'
import { loadManifest, type Manifest } from '../compare/manifest.ts'
import { normalize as normalizeDoc } from '../compare/normalize.ts'
import { type CompareRules, findWaiver, loadRules } from '../compare/rules.ts'
import { formatInstant, parseInstant } from '../protocol/time.ts'
import type { RecordedResponse } from '../capture/format.ts'

/** One place where a replayed response differs from the recorded one. */
export interface Difference {
  /** JSON path inside the compared document, `$status` for the status. */
  path: string
  expected: unknown
  actual: unknown
  /** The comparison engine's class (`value`, `missing_entity`, `order`...), when it made the comparison. */
  class?: string
  detail?: string
}

/**
 * Compares one recorded primary response (`expected`) with the replayed tracker's (`actual`) for a
 * concrete path such as `/stats/Larsson`. Replay takes any comparer; {@link engineComparer} is the
 * comparison engine's, {@link plainComparer} a rule-free deep-equal.
 */
export type SnapshotComparer = (
  path: string,
  expected: RecordedResponse,
  actual: RecordedResponse,
) => Difference[]

const DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/
const MAX_DIFFERENCES = 25

/**
 * The contract's normalization (CONTRACT.md §1) before an equality check: every ISO 8601 instant in
 * its canonical Python `isoformat()` spelling, numbers to 12 significant digits (float noise between
 * PostgreSQL, Python and V8). Order is kept: list order is part of the contract.
 */
export function normalize(value: unknown): unknown {
  if (typeof value === 'string' && DATETIME.test(value)) {
    const micros = parseInstant(value)
    return micros === undefined ? value : formatInstant(micros)
  }
  if (typeof value === 'number') return Number.isFinite(value) ? Number(value.toPrecision(12)) : value
  if (Array.isArray(value)) return value.map(normalize)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) out[key] = normalize((value as Record<string, unknown>)[key])
    return out
  }
  return value
}

function deepDiff(expected: unknown, actual: unknown, path: string, out: Difference[]): void {
  if (out.length >= MAX_DIFFERENCES) return
  if (Object.is(expected, actual)) return
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) {
      out.push({ path: `${path}.length`, expected: expected.length, actual: actual.length })
    }
    for (let i = 0; i < Math.min(expected.length, actual.length); i++) {
      deepDiff(expected[i], actual[i], `${path}[${i}]`, out)
    }
    return
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
  if (isObject(expected) && isObject(actual)) {
    for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      deepDiff(expected[key], actual[key], `${path}.${key}`, out)
    }
    return
  }
  out.push({ path, expected, actual })
}

/** Deep-equal after {@link normalize}: no rules, every difference counts. */
export function compareResponse(expected: RecordedResponse, actual: RecordedResponse): Difference[] {
  const out: Difference[] = []
  if (expected.status !== actual.status)
    out.push({ path: '$status', expected: expected.status, actual: actual.status })
  deepDiff(normalize(expected.body), normalize(actual.body), '$', out)
  return out
}

/** The rule-free comparer. */
export const plainComparer: SnapshotComparer = (_path, expected, actual) => compareResponse(expected, actual)

/** Matches a concrete path to the manifest endpoint whose template produced it. */
function endpointMatcher(
  manifest: Manifest,
): (path: string) => { name: string; statusOnly: boolean } | undefined {
  const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const patterns = manifest.endpoints.map((e) => ({
    name: e.name,
    statusOnly: e.compare === 'status',
    re: new RegExp(
      `^${e.path
        .split(/(\{[^}]+\})/)
        .map((part) =>
          part.startsWith('{') ? (part === '{character}' ? '[^/?]+' : '[^&]+') : escapeRegExp(part),
        )
        .join('')}$`,
    ),
  }))
  return (path) => patterns.find((p) => p.re.test(path))
}

/**
 * The comparison engine (src/compare) as a replay comparer: the endpoint's rules from
 * `compare/rules.json` (keyed entities, tolerances, instants compared as instants), live waivers
 * applied. Monotonic-lag and noise allowances are not used: a replay has no second primary read and
 * no lag, so everything else is a real difference.
 */
export function engineComparer(
  rules: CompareRules,
  manifest: Manifest,
  nowMs = Date.now(),
): SnapshotComparer {
  const endpointOf = endpointMatcher(manifest)
  return (path, expected, actual) => {
    const endpoint = endpointOf(path)
    if (endpoint?.statusOnly === true) {
      return expected.status === actual.status
        ? []
        : [{ path: '$status', expected: expected.status, actual: actual.status }]
    }
    const epRules = endpoint === undefined ? undefined : rules.endpoints[endpoint.name]
    const outcome = compareDocs(
      normalizeDoc(expected, epRules),
      normalizeDoc(actual, epRules),
      epRules,
      rules,
    )
    return outcome.differences
      .filter(
        (d) =>
          endpoint === undefined ||
          findWaiver(rules, endpoint.name, d.signature, d.class, nowMs) === undefined,
      )
      .slice(0, MAX_DIFFERENCES)
      .map((d) => ({
        path: d.path,
        expected: d.primary,
        actual: d.shadow,
        class: d.class,
        ...(d.detail === undefined ? {} : { detail: d.detail }),
      }))
  }
}

/** Loads the engine comparer from the operator-edited files in `compare/`. */
export async function loadEngineComparer(dir = 'compare'): Promise<SnapshotComparer> {
  const [rules, manifest] = await Promise.all([
    loadRules(`${dir}/rules.json`, `${dir}/waivers.json`),
    loadManifest(`${dir}/endpoints.json`),
  ])
  return engineComparer(rules, manifest)
}
