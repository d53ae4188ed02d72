import type { FastifyInstance } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'

/** What `GET /metrics` answers with: the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE
export const METRIC_PREFIX = 'overlord_'

/** Readable metric names for JSON keys that read badly on their own; the rule below still applies. */
const NAMES: ReadonlyMap<string, string> = new Map([
  ['by_type', 'frames_accepted_by_type'],
  ['bad_by_reason', 'frames_bad_by_reason'],
])
/** Label names for maps whose key does not say `..._by_<label>`. */
const LABELS: ReadonlyMap<string, string> = new Map([
  ['handler_errors', 'site'],
  ['suppressed', 'kind'],
  ['browser_messages_ignored', 'reason'],
])
/** Levels that go down as well as up, besides those the suffix rule finds. */
const GAUGES: ReadonlySet<string> = new Set([
  'browsers',
  'plugin_connections',
  'read_only',
  'timescale',
  'pid',
])
const GAUGE_SUFFIX =
  /_(bytes|ms|seconds|at|pending|in_flight|inflight|queued|queue_length|depth|size|current)$/
const BY_LABEL = /(?:^|_)by_([a-z][a-z0-9_]*)$/
/** Nested objects deeper than this are not exported (the JSON keeps them). */
const MAX_DEPTH = 3

type Kind = 'counter' | 'gauge'

/** One metric family derived from a `/metrics.json` key, and its values at one scrape. */
export interface Reading {
  /** The full metric name, e.g. `overlord_frames_bad_by_reason_total`. */
  name: string
  kind: Kind
  /** The label of a `{label: number}` map; none for a plain number. */
  label: string | undefined
  /** The JSON path it came from, e.g. `bad_by_reason`. */
  path: string
  /** `[label value, value]`, or one `[undefined, value]` for a plain number. */
  values: [string | undefined, number][]
}

const sanitize = (s: string): string => s.replace(/[^a-zA-Z0-9_]/g, '_').replace(/^(?=[0-9])/, '_')

const isNumberMap = (value: object): value is Record<string, number> =>
  Object.values(value).every((v) => typeof v === 'number')

function familyOf(path: string, kindHint: Kind | undefined, label: string | undefined) {
  const base = sanitize(NAMES.get(path) ?? path)
  const kind = kindHint ?? (GAUGES.has(path) || GAUGE_SUFFIX.test(path) ? 'gauge' : 'counter')
  const suffix = kind === 'counter' && !base.endsWith('_total') ? '_total' : ''
  return { name: `${METRIC_PREFIX}${base}${suffix}`, kind, label }
}

/**
 * Maps the `/metrics.json` object onto Prometheus families, so a key added to it is exported
 * without editing this module:
 * - a number is a counter named `overlord_<key>_total`, or a gauge `overlord_<key>` when the key
 *   is a level (listed in GAUGES or ending in `_bytes`, `_ms`, `_at`, `_pending`, `_size`, …);
 *   a boolean is a 0/1 gauge; null and strings are left out;
 * - an object of numbers only (`bad_by_reason`) is one family with a label: the word after the
 *   key's last `by_` (`reason`), a LABELS entry, or else `key`;
 * - any other object is flattened, its children named `<key>_<child>` by the same rules.
 * NAMES renames a key before the rule applies; non-alphanumerics become `_`.
 */
export function readSnapshot(snapshot: Readonly<Record<string, unknown>>): Reading[] {
  const out: Reading[] = []
  const walk = (object: object, prefix: string, depth: number): void => {
    for (const [key, value] of Object.entries(object)) {
      const path = prefix === '' ? key : `${prefix}_${key}`
      if (typeof value === 'number') {
        if (Number.isFinite(value))
          out.push({ ...familyOf(path, undefined, undefined), path, values: [[undefined, value]] })
      } else if (typeof value === 'boolean') {
        out.push({ ...familyOf(path, 'gauge', undefined), path, values: [[undefined, value ? 1 : 0]] })
      } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        if (isNumberMap(value)) {
          const label = sanitize(LABELS.get(path) ?? BY_LABEL.exec(path)?.[1] ?? 'key')
          const values = Object.entries(value)
            .filter(([, n]) => Number.isFinite(n))
            .map(([k, n]): [string, number] => [k, n])
          out.push({ ...familyOf(path, undefined, label), path, values })
        } else if (depth < MAX_DEPTH) {
          walk(value, path, depth + 1)
        }
      }
    }
  }
  walk(snapshot, '', 1)
  return out
}

let processRegistry: Registry | undefined

/**
 * prom-client's default metrics (CPU, memory, handles, event-loop lag, GC) describe the process,
 * not a tracker: one set per process, made at the first scrape, however many trackers it runs.
 * Their standard names (`process_*`, `nodejs_*`) are kept so stock dashboards work.
 */
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * Serves a tracker's counters to Prometheus. Each tracker has its own registry (several run in
 * one test process); its metrics are read from the counters object at scrape time, through
 * prom-client `collect()` callbacks, and a family is registered the first time its key is seen.
 */
export class PrometheusExporter {
  readonly registry = new Registry()
  readonly #source: () => Readonly<Record<string, unknown>>
  readonly #families = new Map<string, { kind: Kind; label: string | undefined; path: string }>()
  #current = new Map<string, Reading>()

  constructor(source: () => Readonly<Record<string, unknown>>) {
    this.#source = source
  }

  /** The exposition text: the process metrics, then this tracker's. */
  async scrape(): Promise<string> {
    const current = new Map<string, Reading>()
    for (const reading of readSnapshot(this.#source())) {
      // Two keys that map to one name, or a key that changed shape: the first one seen keeps it.
      if (current.has(reading.name) || !this.#accept(reading)) continue
      current.set(reading.name, reading)
    }
    this.#current = current
    return `${await processMetrics().metrics()}\n${await this.registry.metrics()}`
  }

  #accept(reading: Reading): boolean {
    const known = this.#families.get(reading.name)
    if (known !== undefined) {
      return known.kind === reading.kind && known.label === reading.label && known.path === reading.path
    }
    const current = (): Reading | undefined => this.#current.get(reading.name)
    const config = {
      name: reading.name,
      help: `${reading.path} in /metrics.json${reading.label === undefined ? '' : `, by ${reading.label}`}`,
      labelNames: reading.label === undefined ? [] : [reading.label],
      registers: [this.registry],
    }
    const label = reading.label
    if (reading.kind === 'counter') {
      new Counter({
        ...config,
        collect() {
          this.reset()
          for (const [value, n] of current()?.values ?? []) {
            if (label === undefined || value === undefined) this.inc(n)
            else this.inc({ [label]: value }, n)
          }
          if (label === undefined && current() === undefined) this.remove({})
        },
      })
    } else {
      new Gauge({
        ...config,
        collect() {
          this.reset()
          for (const [value, n] of current()?.values ?? []) {
            if (label === undefined || value === undefined) this.set(n)
            else this.set({ [label]: value }, n)
          }
          if (label === undefined && current() === undefined) this.remove({})
        },
      })
    }
    this.#families.set(reading.name, { kind: reading.kind, label: reading.label, path: reading.path })
    return true
  }
}

/**
 * `GET /metrics` (Prometheus text) and `GET /metrics.json` (the counters as JSON, for the harness).
 * Both sit behind the tracker's auth hook like every non-public route.
 */
export function registerMetricsRoutes(
  app: FastifyInstance,
  source: () => Readonly<Record<string, unknown>>,
): PrometheusExporter {
  const exporter = new PrometheusExporter(source)
  app.get('/metrics', async (_req, reply) =>
    reply.type(PROMETHEUS_CONTENT_TYPE).send(await exporter.scrape()),
  )
  app.get('/metrics.json', async () => source())
  return exporter
}
