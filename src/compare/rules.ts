import { readFile } from 'node:fs/promises'
import { ERR, OverlordError } from '../protocol/errors.ts'
import type { DiffClass, Severity } from './types.ts'
import { DIFF_CLASSES } from './types.ts'

/** How one JSON path is compared (patterns: `players[].kills`, `*` = one key, `**` = any depth). */
export interface FieldRule {
  /** Numbers: equal when `|p - s| <= abs` or `<= rel * max(|p|, |s|)`. */
  abs?: number
  rel?: number
  /** Compare strings as ISO 8601 instants; equal when within `toleranceMs`. */
  timestamp?: boolean
  toleranceMs?: number
  /** A counter or clock that only grows: a shadow value between the primary's two reads is explained. */
  monotonic?: boolean
  /**
   * How far apart in time the two sides' values of a monotonic field may be taken, either way (ms):
   * a total read when each side's 5 s cache refreshes. The primary's rate over that time is allowed.
   */
  apartMs?: number
  /** How much a monotonic value may trail, and lead, beyond the rate-based allowance (a count). */
  maxLead?: number
  maxAhead?: number
  /** Why this field is not compared exactly: required with any tolerance or allowance (issue 9 §7). */
  reason?: string
}

/**
 * How an entity names its frame: the field holding the frame's own instant, and optionally an archive
 * kind: every primary read of that kind (`telemetry`: `/live` players, `/stats` latest snapshots) is
 * kept by character and instant, so a shadow entity at a frame no read of its own endpoint showed
 * is still compared, field by field, with the primary's copy of that frame.
 */
export interface FrameRule {
  field: string
  archive?: string
}

/** A time series keyed by group and instant (`/trails`, `/history`): rows past the other side's ends are lag. */
export interface SeriesRule {
  /** The field that groups rows (a character). */
  by: string
  /** The row's own instant. */
  time: string
}

/** The rules of one endpoint (keyed by the manifest's endpoint name). */
export interface EndpointRules {
  /** Arrays compared as sets of entities, by the listed identity fields (composite keys allowed). */
  keys?: Record<string, readonly string[]>
  /** Keyed arrays whose order is part of the contract; a different order is an `order` difference. */
  ordered?: readonly string[]
  /**
   * For an `ordered` array: the fields the contract sorts it by (`/history`: "ordered by time").
   * Entities equal on them may come in either order; without it the whole identity is the order.
   */
  orderBy?: Record<string, readonly string[]>
  fields?: Record<string, FieldRule>
  /**
   * Frame identity (issue 9 §1): path → the field that names the plugin frame a value was copied from
   * (the client `timestamp`). For a keyed array each entity is paired with the primary read that shows
   * the same frame; for an object (`body.latest_snapshot`) the whole document is. Only values that
   * describe the same frame are compared; an entity at another frame is lag, measured, not a mismatch.
   */
  frames?: Record<string, FrameRule>
  /** Keyed arrays that are time series: a row newer or older than every row of its group on the other side is lag or the window's edge. */
  series?: Record<string, SeriesRule>
}

/** A deliberate, temporary acceptance of a difference. Only waivers may silence a field. */
export interface Waiver {
  id: string
  endpoint: string
  /** A path pattern as in {@link FieldRule}. */
  path: string
  /** Classes it covers; all when absent. */
  classes?: readonly DiffClass[]
  reason: string
  owner: string
  /** ISO 8601 date or instant; an expired waiver stops applying and blocks cutover. */
  expires: string
}

export interface CompareRules {
  defaults: { abs: number; rel: number; toleranceMs: number }
  severity: Record<DiffClass, Severity>
  lag: {
    /** Lag assumed for lead allowances when none could be measured. */
    assumedMs: number
    /** The horizon: a shadow further behind than this (or a read older than it) is not explained as lag. */
    maxMs: number
    /** How far an uncached counter of the shadow may run ahead of the primary (the primary's write delay). */
    aheadMs: number
    /** Earlier reads of each URL kept per side to pair frames and explain lag. */
    history: number
  }
  endpoints: Record<string, EndpointRules>
  waivers: readonly Waiver[]
}

const DEFAULT_SEVERITY: Record<DiffClass, Severity> = {
  missing_entity: 'hard',
  extra_entity: 'hard',
  missing_field: 'hard',
  extra_field: 'hard',
  type_change: 'hard',
  // CONTRACT.md §1 fixes the spelling of instants (Python isoformat): a consumer may compare text.
  format: 'hard',
  value: 'hard',
  order: 'soft',
}

const patternCache = new Map<string, RegExp>()

/** Whether a path signature matches a rule pattern (`*` one key, `**` any depth, `[]` array element). */
export function matchesPattern(pattern: string, signature: string): boolean {
  if (pattern === signature || pattern === '**') return true
  let re = patternCache.get(pattern)
  if (re === undefined) {
    const source = pattern
      .split('**')
      .map((part) =>
        part
          .split('*')
          .map((lit) => lit.replace(/[.[\]()+?^${}|\\]/g, '\\$&'))
          .join('[^.[\\]]+'),
      )
      .join('.*')
    re = new RegExp(`^${source}$`)
    patternCache.set(pattern, re)
  }
  return re.test(signature)
}

/** The rule for a signature: an exact entry wins, then the first matching pattern in file order. */
export function fieldRule(endpoint: EndpointRules | undefined, signature: string): FieldRule | undefined {
  const fields = endpoint?.fields
  if (fields === undefined) return undefined
  const exact = fields[signature]
  if (exact !== undefined) return exact
  for (const [pattern, rule] of Object.entries(fields)) {
    if (pattern.includes('*') && matchesPattern(pattern, signature)) return rule
  }
  return undefined
}

/** Whether a waiver's expiry has passed at `nowMs`. */
export function isExpired(waiver: Waiver, nowMs: number): boolean {
  const t = Date.parse(waiver.expires)
  return Number.isNaN(t) || t <= nowMs
}

/** The live waiver covering a difference, if any. */
export function findWaiver(
  rules: CompareRules,
  endpoint: string,
  signature: string,
  cls: DiffClass,
  nowMs: number,
): Waiver | undefined {
  for (const waiver of rules.waivers) {
    if (waiver.endpoint !== endpoint && waiver.endpoint !== '*') continue
    if (waiver.classes !== undefined && !waiver.classes.includes(cls)) continue
    if (!matchesPattern(waiver.path, signature)) continue
    if (isExpired(waiver, nowMs)) continue
    return waiver
  }
  return undefined
}

const fail = (message: string): never => {
  throw new OverlordError(ERR.CMP_RULES, message)
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function checkWaiver(value: unknown, index: number): Waiver {
  if (!isObject(value)) return fail(`waivers[${index}] is not an object`)
  for (const key of ['id', 'endpoint', 'path', 'reason', 'owner', 'expires'] as const) {
    if (typeof value[key] !== 'string' || value[key] === '') {
      fail(`waivers[${index}].${key} is required (a waiver needs a reason, an owner and an expiry)`)
    }
  }
  if (Number.isNaN(Date.parse(value.expires as string))) fail(`waivers[${index}].expires is not a date`)
  const classes = value.classes
  if (classes !== undefined) {
    if (!Array.isArray(classes)) fail(`waivers[${index}].classes must be an array`)
    for (const c of classes as unknown[]) {
      if (!DIFF_CLASSES.includes(c as DiffClass))
        fail(`waivers[${index}].classes: unknown class ${String(c)}`)
    }
  }
  return value as unknown as Waiver
}

/**
 * Validates rules (and waivers) as read from `compare/`; fills defaults. Throws `CMP_ERR_RULES`
 * with the offending location, so a bad edit fails the sweep loudly instead of silencing a field.
 */
export function parseRules(raw: unknown, rawWaivers: unknown = []): CompareRules {
  if (!isObject(raw)) return fail('rules must be a JSON object')
  const d = isObject(raw.defaults) ? raw.defaults : {}
  const num = (v: unknown, name: string, dflt: number): number => {
    if (v === undefined) return dflt
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return fail(`${name} must be a number >= 0`)
    return v
  }
  const severity = { ...DEFAULT_SEVERITY }
  if (raw.severity !== undefined) {
    if (!isObject(raw.severity)) fail('severity must be an object')
    for (const [cls, sev] of Object.entries(raw.severity as Record<string, unknown>)) {
      if (!DIFF_CLASSES.includes(cls as DiffClass)) fail(`severity: unknown class ${cls}`)
      if (sev !== 'hard' && sev !== 'soft') fail(`severity.${cls} must be "hard" or "soft"`)
      severity[cls as DiffClass] = sev as Severity
    }
  }
  const lag = isObject(raw.lag) ? raw.lag : {}
  const endpoints = isObject(raw.endpoints) ? raw.endpoints : {}
  for (const [name, ep] of Object.entries(endpoints)) {
    if (!isObject(ep)) fail(`endpoints.${name} must be an object`)
    const e = ep as Record<string, unknown>
    if (e.keys !== undefined) {
      if (!isObject(e.keys)) fail(`endpoints.${name}.keys must be an object`)
      for (const [path, key] of Object.entries(e.keys as object)) {
        if (!Array.isArray(key) || key.length === 0 || key.some((k) => typeof k !== 'string')) {
          fail(`endpoints.${name}.keys.${path} must be a non-empty array of field names`)
        }
      }
    }
    if (e.orderBy !== undefined) {
      if (!isObject(e.orderBy)) fail(`endpoints.${name}.orderBy must be an object`)
      const ordered = Array.isArray(e.ordered) ? (e.ordered as unknown[]) : []
      for (const [path, by] of Object.entries(e.orderBy as object)) {
        if (!Array.isArray(by) || by.length === 0 || by.some((k) => typeof k !== 'string'))
          fail(`endpoints.${name}.orderBy.${path} must be a non-empty array of field names`)
        if (!ordered.includes(path)) fail(`endpoints.${name}.orderBy.${path} needs ${path} in "ordered"`)
      }
    }
    if (e.fields !== undefined) {
      if (!isObject(e.fields)) fail(`endpoints.${name}.fields must be an object`)
      for (const [path, rule] of Object.entries(e.fields as object)) {
        if (!isObject(rule)) fail(`endpoints.${name}.fields.${path} must be an object`)
        const r = rule as Record<string, unknown>
        const allowances = ['abs', 'rel', 'toleranceMs', 'maxLead', 'apartMs', 'maxAhead']
        for (const k of allowances) num(r[k], `endpoints.${name}.fields.${path}.${k}`, 0)
        const allowance = allowances.some((k) => Number(r[k] ?? 0) > 0)
        if ((allowance || r.monotonic === true) && (typeof r.reason !== 'string' || r.reason.trim() === '')) {
          fail(`endpoints.${name}.fields.${path}: a tolerance or monotonic allowance needs a "reason"`)
        }
      }
    }
    if (e.frames !== undefined) {
      if (!isObject(e.frames)) fail(`endpoints.${name}.frames must be an object`)
      const frames = e.frames as Record<string, unknown>
      for (const [path, raw] of Object.entries(frames)) {
        const rule = typeof raw === 'string' ? { field: raw } : raw
        const ok =
          isObject(rule) &&
          typeof rule.field === 'string' &&
          rule.field !== '' &&
          (rule.archive === undefined || typeof rule.archive === 'string') &&
          !path.includes('[')
        if (!ok)
          fail(`endpoints.${name}.frames.${path} must name a frame field of a top-level array or object`)
        frames[path] = rule
      }
    }
    if (e.series !== undefined) {
      if (!isObject(e.series)) fail(`endpoints.${name}.series must be an object`)
      for (const [path, rule] of Object.entries(e.series as object)) {
        const r = rule as Record<string, unknown> | null
        if (!isObject(r) || typeof r.by !== 'string' || typeof r.time !== 'string') {
          fail(`endpoints.${name}.series.${path} needs "by" and "time" field names`)
        }
      }
    }
  }
  if (!Array.isArray(rawWaivers)) fail('waivers must be an array')
  const waivers = (rawWaivers as unknown[]).map(checkWaiver)
  const ids = new Set<string>()
  for (const w of waivers) {
    if (ids.has(w.id)) fail(`duplicate waiver id ${w.id}`)
    ids.add(w.id)
  }
  return {
    defaults: {
      abs: num(d.abs, 'defaults.abs', 0),
      rel: num(d.rel, 'defaults.rel', 0),
      toleranceMs: num(d.toleranceMs, 'defaults.toleranceMs', 0),
    },
    severity,
    lag: {
      assumedMs: num(lag.assumedMs, 'lag.assumedMs', 2_000),
      maxMs: num(lag.maxMs, 'lag.maxMs', 60_000),
      aheadMs: num(lag.aheadMs, 'lag.aheadMs', 1_000),
      history: Math.max(1, Math.floor(num(lag.history, 'lag.history', 6))),
    },
    endpoints: endpoints as Record<string, EndpointRules>,
    waivers,
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new OverlordError(ERR.CMP_RULES, `cannot read ${file}`, { cause: err })
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new OverlordError(ERR.CMP_RULES, `${file} is not valid JSON`, { cause: err })
  }
}

/** Reads and validates `compare/rules.json` and `compare/waivers.json`. */
export async function loadRules(rulesFile: string, waiversFile?: string): Promise<CompareRules> {
  const raw = await readJson(rulesFile)
  const waivers = waiversFile === undefined ? [] : await readJson(waiversFile)
  return parseRules(raw, isObject(waivers) ? waivers.waivers : waivers)
}

export { readJson }
