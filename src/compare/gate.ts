import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ERR, OverlordError } from '../protocol/errors.ts'
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
  /** Without database evidence in the window the gate says no. */
  requireDatabase: boolean
  /** The nginx flip and its rollback, printed by `cutover declare`. */
  nginx: { flip: string[]; rollback: string[] }
}

export const DEFAULT_CRITERIA: GateCriteria = {
  windowHours: 24,
  minCleanRate: 0.999,
  minSweeps: 1000,
  noHardMismatchHours: 6,
  maxDbRelDiff: 0.001,
  requireDatabase: true,
  nginx: {
    flip: [
      "sed -i 's/^\\s*server .* # tracker$/    server 127.0.0.1:8766; # tracker/' /etc/nginx/conf.d/tracker-upstream.conf",
      'nginx -t && nginx -s reload',
    ],
    rollback: [
      "sed -i 's/^\\s*server .* # tracker$/    server 127.0.0.1:8765; # tracker/' /etc/nginx/conf.d/tracker-upstream.conf",
      'nginx -t && nginx -s reload',
    ],
  },
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
  ] as const) {
    if (typeof merged[k] !== 'number' || merged[k] < 0) {
      throw new OverlordError(ERR.CMP_RULES, `cutover criteria: ${k} must be a number >= 0`)
    }
  }
  return merged
}

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
  criteria: CriterionResult[]
}

const pct = (x: number) => `${(x * 100).toFixed(3)} %`

/** Evaluates the gate on the ledger: go only when every criterion holds. */
export function evaluateGate(
  entries: readonly LedgerEntry[],
  waivers: readonly Waiver[],
  criteria: GateCriteria,
  nowMs: number,
): GateStatus {
  const results: CriterionResult[] = []
  const inWindow = entries.filter((e) => Date.parse(e.startedAt) >= nowMs - criteria.windowHours * 3_600_000)
  const names = [...new Set(inWindow.flatMap((e) => e.endpoints.map((ep) => ep.name)))].sort()
  if (names.length === 0) {
    results.push({
      id: 'sweeps',
      description: `at least ${criteria.minSweeps} sweeps in the last ${criteria.windowHours} h`,
      ok: false,
      figure: '0 sweeps',
      evidence: 'the ledger has no sweep in the window',
    })
  }
  for (const name of names) {
    const seen = inWindow.flatMap((e) =>
      e.endpoints.filter((ep) => ep.name === name).map((ep) => ({ e, ep })),
    )
    const clean = seen.filter(({ ep }) => ep.clean).length
    const rate = seen.length === 0 ? 0 : clean / seen.length
    const firstDirty = seen.find(({ ep }) => !ep.clean)
    results.push({
      id: `clean-rate:${name}`,
      description: `${name}: >= ${pct(criteria.minCleanRate)} clean sweeps over ${criteria.windowHours} h, at least ${criteria.minSweeps} sweeps`,
      ok: seen.length >= criteria.minSweeps && rate >= criteria.minCleanRate,
      figure: `${pct(rate)} of ${seen.length} sweeps`,
      evidence:
        firstDirty === undefined
          ? `${clean} clean sweeps`
          : `${seen.length - clean} unclean, first ${firstDirty.e.id}`,
    })
  }
  const hardSince = nowMs - criteria.noHardMismatchHours * 3_600_000
  const hard = entries.filter(
    (e) => Date.parse(e.startedAt) >= hardSince && e.endpoints.some((ep) => ep.hard > 0),
  )
  results.push({
    id: 'no-hard-mismatch',
    description: `no hard mismatch in the last ${criteria.noHardMismatchHours} h`,
    ok: hard.length === 0,
    figure: `${hard.length} sweeps with hard mismatches`,
    evidence:
      hard.length === 0
        ? 'none'
        : hard
            .slice(-3)
            .map(
              (e) =>
                `${e.id}: ${e.endpoints
                  .filter((ep) => ep.hard > 0)
                  .map((ep) => `${ep.name}×${ep.hard}`)
                  .join(', ')}`,
            )
            .join('; '),
  })
  const withDb = inWindow.filter((e) => e.database !== undefined)
  const lastDb = withDb.at(-1)
  results.push({
    id: 'database-parity',
    description: `database parity within ${pct(criteria.maxDbRelDiff)}`,
    ok:
      lastDb === undefined
        ? !criteria.requireDatabase
        : lastDb.database!.worstRelDiff <= criteria.maxDbRelDiff,
    figure: lastDb === undefined ? 'no database check' : `worst ${pct(lastDb.database!.worstRelDiff)}`,
    evidence: lastDb === undefined ? 'no sweep ran with --primary-db/--shadow-db in the window' : lastDb.id,
  })
  const expired = waivers.filter((w) => isExpired(w, nowMs))
  results.push({
    id: 'no-expired-waiver',
    description: 'no open waiver past its expiry',
    ok: expired.length === 0,
    figure: `${expired.length} expired of ${waivers.length}`,
    evidence:
      expired.length === 0 ? 'none' : expired.map((w) => `${w.id} (${w.owner}, ${w.expires})`).join(', '),
  })
  return { go: results.every((r) => r.ok), evaluatedAt: new Date(nowMs).toISOString(), criteria: results }
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
