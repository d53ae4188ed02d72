import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ERR, OverlordError } from '../protocol/errors.ts'
import { describeFieldNoise, type FieldNoise, fieldNoise } from './field-noise.ts'
import { count, percent, plural } from './figures.ts'
import type { LedgerEntry } from './ledger.ts'
import type { Waiver } from './rules.ts'
import { isExpired } from './rules.ts'

/** The cutover criteria (`compare/cutover.json`); every field has a default (issue 4 §6). */
export interface GateCriteria {
  windowHours: number
  minCleanRate: number
  minSweeps: number
  noHardMismatchHours: number
  maxDbRelDiff: number
  /** The largest share of the window's sweeps in which any one field may be noise (issue 9 §4). */
  maxFieldNoiseRate: number
  /** Without database evidence in the window the gate says no. */
  requireDatabase: boolean
}

export const DEFAULT_CRITERIA: GateCriteria = {
  windowHours: 24,
  minCleanRate: 0.999,
  minSweeps: 1000,
  noHardMismatchHours: 6,
  maxDbRelDiff: 0.001,
  maxFieldNoiseRate: 0.01,
  requireDatabase: true,
}

/** Merges operator criteria over the defaults. */
export function parseCriteria(raw: unknown): GateCriteria {
  if (raw === undefined || raw === null) return DEFAULT_CRITERIA
  if (typeof raw !== 'object') throw new OverlordError(ERR.CMP_RULES, 'cutover criteria must be an object')
  const merged = { ...DEFAULT_CRITERIA, ...(raw as Partial<GateCriteria>) }
  for (const k of [
    'windowHours',
    'minCleanRate',
    'minSweeps',
    'noHardMismatchHours',
    'maxDbRelDiff',
    'maxFieldNoiseRate',
  ] as const) {
    if (typeof merged[k] !== 'number' || merged[k] < 0) {
      throw new OverlordError(ERR.CMP_RULES, `cutover criteria: ${k} must be a number >= 0`)
    }
  }
  return merged
}

/** One criterion's verdict, with the figure it was judged on and where to look. */
export interface CriterionResult {
  id: string
  description: string
  ok: boolean
  figure: string
  evidence: string
}

export interface GateStatus {
  go: boolean
  evaluatedAt: string
  /**
   * Why the verdict is what it is, one phrase per deciding criterion: on a NO-GO the failing ones,
   * on a GO the figures that justify it. `cutover status` prints them as its first line.
   */
  reasons: string[]
  criteria: CriterionResult[]
  /** Every field that differed in the window, worst noise rate first. */
  fieldNoise: FieldNoise[]
}

const HOUR_MS = 3_600_000

/** A group of criteria and the phrase the headline gives it. */
interface Judged {
  results: CriterionResult[]
  phrase: string
}

/** Lists the first few items and counts the rest: `a, b, c and 4 more endpoints`. */
function some(items: readonly string[], noun: string, shown = 3): string {
  const head = items.slice(0, shown).join(', ')
  return items.length > shown ? `${head} and ${count(items.length - shown)} more ${noun}` : head
}

interface EndpointRun {
  name: string
  sweeps: number
  clean: number
  unclean: string[]
}

function endpointRuns(inWindow: readonly LedgerEntry[]): EndpointRun[] {
  const runs = new Map<string, EndpointRun>()
  for (const e of inWindow) {
    for (const ep of e.endpoints) {
      const run = runs.get(ep.name) ?? { name: ep.name, sweeps: 0, clean: 0, unclean: [] }
      run.sweeps += 1
      if (ep.clean) run.clean += 1
      else run.unclean.push(e.id)
      runs.set(ep.name, run)
    }
  }
  return [...runs.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/** The sweep count: stated once, however many endpoints there are. */
function judgeSweeps(
  inWindow: readonly LedgerEntry[],
  runs: readonly EndpointRun[],
  c: GateCriteria,
): Judged {
  const n = inWindow.length
  const required = count(c.minSweeps)
  const window = `in the last ${c.windowHours} h`
  const short = runs.filter((r) => r.sweeps < c.minSweeps && r.sweeps < n).sort((a, b) => a.sweeps - b.sweeps)
  const ok = n > 0 && n >= c.minSweeps && short.length === 0
  const first = inWindow[0]
  const last = inWindow.at(-1)
  const result: CriterionResult = {
    id: 'sweeps',
    description: `at least ${required} sweeps of every endpoint ${window}`,
    ok,
    figure: plural(n, 'sweep'),
    evidence:
      first === undefined || last === undefined
        ? 'the ledger has no sweep in the window'
        : short.length > 0
          ? `swept less often: ${some(
              short.map((r) => `${r.name} ${count(r.sweeps)}`),
              'endpoints',
              5,
            )}`
          : `first ${first.id}, last ${last.id}`,
  }
  let phrase = `${plural(n, 'sweep')} ${window} (needs ${required})`
  if (n < c.minSweeps || n === 0) phrase = `${count(n)} of the ${required} sweeps required ${window}`
  else if (short.length > 0) {
    phrase = `${some(
      short.map((r) => `${r.name} swept ${plural(r.sweeps, 'time')}`),
      'endpoints',
    )} of the ${required} required ${window}`
  }
  return { results: [result], phrase }
}

/** One criterion per endpoint, but one headline phrase for them all. */
function judgeCleanRates(runs: readonly EndpointRun[], c: GateCriteria): Judged {
  const needs = percent(c.minCleanRate)
  const rated = runs.map((r) => ({ r, rate: r.sweeps === 0 ? 0 : r.clean / r.sweeps }))
  const results = rated.map(({ r, rate }) => ({
    id: `clean-rate:${r.name}`,
    description: `${r.name} clean in at least ${needs} of sweeps`,
    ok: rate >= c.minCleanRate,
    figure: `${percent(rate, 'down')} of ${count(r.sweeps)} sweeps`,
    evidence:
      r.unclean.length === 0
        ? plural(r.clean, 'clean sweep')
        : `${count(r.unclean.length)} unclean, first ${r.unclean[0]}, last ${r.unclean.at(-1)}`,
  }))
  const worst = [...rated].sort((a, b) => a.rate - b.rate || a.r.name.localeCompare(b.r.name))
  const failing = worst.filter(({ rate }) => rate < c.minCleanRate)
  const named = (list: typeof worst) => list.map(({ r, rate }) => `${r.name} ${percent(rate, 'down')}`)
  const only = failing.length === 1 ? failing[0] : undefined
  let phrase: string
  if (only !== undefined) phrase = `${only.r.name} clean ${percent(only.rate, 'down')} (needs ${needs})`
  else if (failing.length > 1) phrase = `clean below ${needs}: ${some(named(failing), 'endpoints')}`
  else if (worst.length === 0) phrase = 'no endpoint swept'
  else phrase = `${plural(worst.length, 'endpoint')} clean >= ${needs} (worst ${named(worst)[0]})`
  return { results, phrase }
}

function judgeHardMismatches(entries: readonly LedgerEntry[], c: GateCriteria, nowMs: number): Judged {
  const since = nowMs - c.noHardMismatchHours * HOUR_MS
  const hard = entries.filter(
    (e) => Date.parse(e.startedAt) >= since && e.endpoints.some((ep) => ep.hard > 0),
  )
  const where = (e: LedgerEntry) =>
    `${e.id}: ${e.endpoints
      .filter((ep) => ep.hard > 0)
      .map((ep) => `${ep.name}×${ep.hard}`)
      .join(', ')}`
  const latest = hard.at(-1)
  return {
    results: [
      {
        id: 'no-hard-mismatch',
        description: `no hard mismatch in the last ${c.noHardMismatchHours} h`,
        ok: hard.length === 0,
        figure: `${plural(hard.length, 'sweep')} with hard mismatches`,
        evidence: hard.length === 0 ? 'none' : hard.slice(-3).map(where).join('; '),
      },
    ],
    phrase:
      latest === undefined
        ? `no hard mismatch in the last ${c.noHardMismatchHours} h`
        : `hard mismatches in ${plural(hard.length, 'sweep')} of the last ${c.noHardMismatchHours} h (latest ${where(latest)})`,
  }
}

/** Noise judged across the window, per field: a field noisy one sweep in a hundred fails here. */
function judgeFieldNoise(fields: readonly FieldNoise[], c: GateCriteria): Judged {
  const max = percent(c.maxFieldNoiseRate)
  const noisy = fields.filter((f) => f.noise > 0)
  const failing = noisy.filter((f) => f.noiseRate > c.maxFieldNoiseRate)
  const name = (f: FieldNoise) => `${f.endpoint} ${f.signature}`
  const worst = noisy[0]
  const result: CriterionResult = {
    id: 'field-noise',
    description: `no field noise in more than ${max} of sweeps over ${c.windowHours} h`,
    ok: failing.length === 0,
    figure:
      worst === undefined
        ? 'no field was noise'
        : `${count(failing.length)} of ${count(noisy.length)} noisy fields above ${max}, worst ${percent(worst.noiseRate, 'up')}`,
    evidence:
      worst === undefined
        ? 'none'
        : some(
            (failing.length > 0 ? failing : [worst]).map(
              (f) =>
                `${name(f)} ${count(f.noise)} of ${count(f.sweeps)}${f.mismatch > 0 ? ` (mismatch in ${count(f.mismatch)})` : ''}`,
            ),
            'fields',
            5,
          ),
  }
  let phrase =
    worst === undefined
      ? 'no field was noise'
      : `no field noise above ${max} (worst ${name(worst)} ${percent(worst.noiseRate, 'up')})`
  if (worst !== undefined && failing.length > 0) {
    const more = failing.length > 1 ? ` and ${count(failing.length - 1)} more fields` : ''
    phrase = `${name(worst)} noise in ${count(worst.noise)} of ${count(worst.sweeps)} sweeps (${percent(worst.noiseRate, 'up')}, max ${max})${more}`
  }
  return { results: [result], phrase }
}

function judgeDatabase(inWindow: readonly LedgerEntry[], c: GateCriteria): Judged {
  const last = inWindow.findLast((e) => e.database !== undefined)
  const worst = last?.database?.worstRelDiff
  const max = percent(c.maxDbRelDiff)
  const ok = worst === undefined ? !c.requireDatabase : worst <= c.maxDbRelDiff
  let phrase = `database within ${max} (worst ${percent(worst ?? 0, 'up')})`
  if (worst === undefined) {
    phrase = ok
      ? 'database not checked (not required)'
      : `no database parity check in the last ${c.windowHours} h`
  } else if (!ok) phrase = `database differs by ${percent(worst, 'up')} (max ${max}) in ${last!.id}`
  return {
    results: [
      {
        id: 'database-parity',
        description: `database parity within ${max}`,
        ok,
        figure: worst === undefined ? 'no database check' : `worst ${percent(worst, 'up')}`,
        evidence: last === undefined ? 'no sweep ran with --primary-db/--shadow-db in the window' : last.id,
      },
    ],
    phrase,
  }
}

function judgeWaivers(waivers: readonly Waiver[], nowMs: number): Judged {
  const expired = waivers.filter((w) => isExpired(w, nowMs))
  const only = expired.length === 1 ? expired[0] : undefined
  return {
    results: [
      {
        id: 'no-expired-waiver',
        description: 'no open waiver past its expiry',
        ok: expired.length === 0,
        figure: `${expired.length} expired of ${waivers.length}`,
        evidence:
          expired.length === 0 ? 'none' : expired.map((w) => `${w.id} (${w.owner}, ${w.expires})`).join(', '),
      },
    ],
    phrase:
      only !== undefined
        ? `waiver ${only.id} expired ${only.expires} (owner ${only.owner})`
        : expired.length > 1
          ? `${count(expired.length)} waivers expired: ${some(
              expired.map((w) => w.id),
              'waivers',
            )}`
          : 'no expired waiver',
  }
}

/** Evaluates the gate on the ledger: go only when every criterion holds. */
export function evaluateGate(
  entries: readonly LedgerEntry[],
  waivers: readonly Waiver[],
  criteria: GateCriteria,
  nowMs: number,
): GateStatus {
  const since = nowMs - criteria.windowHours * HOUR_MS
  const inWindow = entries.filter((e) => Date.parse(e.startedAt) >= since)
  const runs = endpointRuns(inWindow)
  const noise = fieldNoise(inWindow)
  const judged = [
    judgeSweeps(inWindow, runs, criteria),
    judgeCleanRates(runs, criteria),
    judgeHardMismatches(entries, criteria, nowMs),
    judgeFieldNoise(noise, criteria),
    judgeDatabase(inWindow, criteria),
    judgeWaivers(waivers, nowMs),
  ]
  const results = judged.flatMap((j) => j.results)
  const go = results.every((r) => r.ok)
  const deciding = go ? judged : judged.filter((j) => j.results.some((r) => !r.ok))
  return {
    go,
    evaluatedAt: new Date(nowMs).toISOString(),
    reasons: deciding.map((j) => j.phrase),
    criteria: results,
    fieldNoise: noise,
  }
}

/**
 * What `cutover status` prints: the verdict and its reasons on the first line; on a NO-GO, one line
 * per criterion after it, with only the endpoints below the clean rate listed one by one and the
 * noisiest fields under the field-noise criterion.
 */
export function gateLines(status: GateStatus): string[] {
  const lines = [`cutover: ${status.go ? 'GO' : 'NO-GO'} — ${status.reasons.join('; ')}`]
  if (status.go) return lines
  const line = (c: CriterionResult) =>
    `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.description}: ${c.figure} — ${c.evidence}`
  const rates = status.criteria.filter((c) => c.id.startsWith('clean-rate:'))
  const passing = rates.filter((c) => c.ok)
  for (const c of status.criteria) {
    if (!c.id.startsWith('clean-rate:')) lines.push(line(c))
    else if (!c.ok) lines.push(line(c))
    else if (c === passing[0]) {
      lines.push(`  ok   clean rate holds on ${count(passing.length)} of ${plural(rates.length, 'endpoint')}`)
    }
    if (c.id === 'field-noise') {
      for (const f of status.fieldNoise.filter((x) => x.noise > 0).slice(0, 5)) {
        lines.push(`       ${describeFieldNoise(f)}`)
      }
    }
  }
  lines.push(`  evaluated ${status.evaluatedAt}`)
  return lines
}

export const DECLARATION_FILE = 'cutover-declared.json'

export interface Declaration {
  declaredAt: string
  by: string
  forced: boolean
  status: GateStatus
}

/** Records the cutover (a watcher stops when it sees this file). */
export async function declareCutover(dir: string, declaration: Declaration): Promise<string> {
  const file = join(dir, DECLARATION_FILE)
  await writeFile(file, `${JSON.stringify(declaration, null, 2)}\n`, { flag: 'wx' }).catch((err: unknown) => {
    if ((err as { code?: string }).code === 'EEXIST') {
      throw new OverlordError(ERR.CMP_RULES, `cutover already declared (${file})`, { cause: err })
    }
    throw err
  })
  return file
}

export async function readDeclaration(dir: string): Promise<Declaration | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, DECLARATION_FILE), 'utf8')) as Declaration
  } catch {
    return undefined
  }
}

/**
 * Sets the declaration aside after a rollback (renamed, kept as evidence), so `watch` runs again;
 * returns the new name, or undefined when none was declared.
 */
export async function clearDeclaration(dir: string, at: string): Promise<string | undefined> {
  const to = join(dir, `cutover-declared.rolled-back-${at.replace(/[:.]/g, '-')}.json`)
  try {
    await rename(join(dir, DECLARATION_FILE), to)
    return to
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw err
  }
}
