import type { DatabaseParity, ParityCheck } from './db-parity.ts'
import { count, percent, plural } from './figures.ts'
import type { ReportData } from './report-data.ts'
import { checkRow, databaseChecks } from './report-data.ts'

const pct = (x: number) => `${(x * 100).toFixed(2)} %`
const cell = (v: unknown) => {
  const s = v === undefined ? '—' : JSON.stringify(v)
  return (s.length > 60 ? `${s.slice(0, 57)}…` : s).replaceAll('|', '\\|')
}

/** Text for a table cell: `|` escaped, line breaks flattened, absent shown as empty. */
const text = (v: unknown) =>
  v === undefined || v === null ? '' : String(v).replaceAll('|', '\\|').replace(/\s+/g, ' ')

function checkTable(checks: readonly ParityCheck[]): string[] {
  const lines = ['| table | column | row | path | primary | shadow | how |', '|---|---|---|---|---|---|---|']
  for (const c of checks) {
    const path = c.path ? `\`${text(c.path)}\`` : ''
    lines.push(
      `| ${text(c.table ?? c.name)} | ${text(c.column)} | ${text(checkRow(c))} | ${path} | ${cell(c.primary)} | ${cell(c.shadow)} | ${text(c.detail ?? (c.ok ? 'equal' : ''))} |`,
    )
  }
  return lines
}

/** The database checks of the latest sweep: every failing one (capped), then the first few others. */
function databaseTables(d: DatabaseParity, sweepId: string): string[] {
  const picked = databaseChecks(d)
  const lines = ['', '### Database checks', '']
  if (picked.failing.length === 0) lines.push('No failing check.')
  else lines.push('Failing:', '', ...checkTable(picked.failing))
  if (picked.omittedFailing > 0) {
    lines.push('', `… and ${picked.omittedFailing} more failing checks in sweep-${sweepId}.json.`)
  }
  if (picked.others.length > 0) {
    const total = picked.others.length + picked.omittedOthers
    lines.push('', `Passing (${picked.others.length} of ${total}):`, '', ...checkTable(picked.others))
  }
  return lines
}

/** Noise by field over the whole ledger, worst first: a field noisy one sweep in 200 shows here. */
function fieldNoiseTable(data: ReportData): string[] {
  const lines = ['', '## Noise by field (whole ledger)', '']
  if (data.fieldNoise.length === 0) return [...lines, 'None.']
  lines.push(
    'In how many of its endpoint\'s sweeps each field was noise, explained or a mismatch; "peak" is the ' +
      'largest share of its values that were noise in one sweep; ≥ marks counts from capped ledger lines.',
    '',
    '| endpoint | field | sweeps | noise | explained | mismatch | noise rate | peak | last noise |',
    '|---|---|---|---|---|---|---|---|---|',
  )
  const esc = (v: string) => v.replaceAll('|', '\\|')
  for (const f of data.fieldNoise.slice(0, 50)) {
    const atLeast = f.incomplete > 0 ? '≥ ' : ''
    lines.push(
      `| ${esc(f.endpoint)} | \`${esc(f.signature)}\` | ${count(f.sweeps)} | ${atLeast}${count(f.noise)} | ${atLeast}${count(f.explained)} | ${atLeast}${count(f.mismatch)} | ${atLeast}${percent(f.noiseRate, 'up')} | ${f.peakNoiseShare === null ? '—' : percent(f.peakNoiseShare, 'up')} | ${f.lastNoise ?? '—'} |`,
    )
  }
  if (data.fieldNoise.length > 50) lines.push('', `… and ${data.fieldNoise.length - 50} more fields.`)
  return lines
}

/** Users' reads compared by `shadow-read`: volume, clean rate, drops and examples per route. */
function userReadsSection(data: ReportData): string[] {
  const u = data.userReads
  if (u === undefined) return []
  const lines = ['', '## User reads (shadow-read)', '']
  const rate = u.compared === 0 ? '—' : percent(u.clean / u.compared, 'down')
  lines.push(
    `${plural(u.windows, 'window')} (${u.from} → ${u.to}): ${count(u.requests)} requests through the proxy, ` +
      `${count(u.compared)} compared with the shadow, clean ${rate}, ${count(u.mismatched)} mismatched.`,
    '',
    '| route | requests | compared | clean | clean rate | mismatched | lag-explained | sampled out | dropped | shadow errors | not compared |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  )
  for (const r of u.routes.slice(0, 80)) {
    const cleanRate = r.cleanRate === null ? '—' : percent(r.cleanRate, 'down')
    lines.push(
      `| ${text(r.route)} | ${count(r.requests)} | ${count(r.compared)} | ${count(r.clean)} | ${cleanRate} | ${count(r.mismatched)} | ${count(r.lagExplained)} | ${count(r.sampledOut)} | ${count(r.dropped)} | ${count(r.shadowErrors)} | ${count(r.notCompared)} |`,
    )
  }
  const kinds = Object.entries(u.shadowErrorsByKind).filter(([, n]) => n > 0)
  if (kinds.length > 0) {
    lines.push('', `Shadow errors: ${kinds.map(([k, n]) => `${k} ${count(n)}`).join(', ')}.`)
  }
  if (u.clusters.length > 0) {
    lines.push(
      '',
      '### Mismatch clusters in user reads',
      '',
      '| route | class | path | count | windows | last seen |',
    )
    lines.push('|---|---|---|---|---|---|')
    for (const c of u.clusters.slice(0, 50)) {
      lines.push(
        `| ${text(c.route)} | ${c.class} | \`${text(c.signature)}\` | ${count(c.count)} | ${count(c.windows)} | ${c.lastSeen} |`,
      )
    }
  }
  if (u.examples.length > 0) {
    lines.push('', `### User read examples (window ${u.examplesFrom})`, '')
    lines.push('| route | url | path | class | primary | shadow |', '|---|---|---|---|---|---|')
    for (const x of u.examples.slice(0, 40)) {
      lines.push(
        `| ${text(x.route)} | \`${text(x.url)}\` | \`${text(x.path)}\` | ${x.class} | ${cell(x.primary)} | ${cell(x.shadow)} |`,
      )
    }
  }
  return lines
}

/** The human report as Markdown (for a PR comment or a terminal pager). */
export function renderMarkdown(data: ReportData): string {
  const lines: string[] = ['# Parity report', '']
  lines.push(
    `Generated ${data.generatedAt} from ${data.sweeps} sweeps (${data.from ?? '—'} → ${data.to ?? '—'}).`,
  )
  lines.push(
    `Verdicts: ${
      Object.entries(data.verdicts)
        .map(([v, n]) => `${v} ${n}`)
        .join(', ') || 'none'
    }.`,
  )
  if (data.gate !== undefined) {
    lines.push('', `## Cutover gate: ${data.gate.go ? 'GO' : 'NO-GO'}`, '')
    lines.push(`${data.gate.reasons.join('; ')}.`, '')
    lines.push('| criterion | ok | figure | evidence |', '|---|---|---|---|')
    for (const c of data.gate.criteria) {
      lines.push(
        `| ${c.description} | ${c.ok ? 'yes' : 'no'} | ${c.figure} | ${c.evidence.replaceAll('|', '\\|')} |`,
      )
    }
  }
  lines.push('', '## Parity per endpoint', '', '| endpoint | sweeps | clean |', '|---|---|---|')
  for (const e of data.endpoints) lines.push(`| ${e.name} | ${e.sweeps} | ${pct(e.cleanRate)} |`)
  lines.push('', '## Diff clusters', '')
  if (data.clusters.length === 0) lines.push('None.')
  else {
    lines.push(
      '| endpoint | class | path | status | total | sweeps | first seen | trend |',
      '|---|---|---|---|---|---|---|---|',
    )
    for (const c of data.clusters.slice(0, 50)) {
      lines.push(
        `| ${c.endpoint} | ${c.class} | \`${c.signature}\` | ${c.status} | ${c.total} | ${c.sweeps} | ${c.firstSeen} | ${c.trend} |`,
      )
    }
  }
  lines.push('', '## Worst fields', '')
  if (data.worstFields.length === 0) lines.push('None.')
  for (const f of data.worstFields)
    lines.push(`- \`${f.signature}\`: ${f.mismatches} mismatches (${f.endpoints.join(', ')})`)
  lines.push(...fieldNoiseTable(data))
  lines.push(...userReadsSection(data))
  const latest = data.latest
  if (latest !== undefined) {
    lines.push('', `## Latest sweep ${latest.id}: ${latest.verdict}`, '')
    lines.push(
      `${latest.characters} characters, ${latest.requests} requests in ${latest.durationMs} ms. ` +
        `Lag p50 ${latest.lag.p50Ms ?? '—'} ms, p95 ${latest.lag.p95Ms ?? '—'} ms, max ${latest.lag.maxMs ?? '—'} ms ` +
        `(${latest.lag.behind} entities behind, ${latest.lag.ahead} ahead, ${latest.lag.paired} compared at the same frame); read gap p50 ${latest.lag.readGapMs.p50 ?? '—'} ms.`,
    )
    if (latest.accounting !== undefined) {
      const a = latest.accounting
      lines.push(
        '',
        `Input: mirrored ${a.mirrored ?? '—'}, received ${a.received ?? '—'}, applied ${a.applied ?? '—'}, ` +
          `lost in transit ${a.lostInTransit ?? '—'}, not applied ${a.notApplied ?? '—'}.`,
      )
    }
    if (latest.database !== undefined) {
      const d = latest.database
      lines.push(
        '',
        `Database parity: worst ${pct(d.worstRelDiff)} over ${d.checks.length} checks; tee lag p95 ${d.teeLagMs.p95 ?? '—'} ms.`,
      )
      lines.push(...databaseTables(d, latest.id))
    }
    if (latest.errors.length > 0) {
      lines.push('', '### Errors', '')
      for (const e of latest.errors.slice(0, 20)) lines.push(`- ${e.side} ${e.url}: ${e.code} ${e.message}`)
    }
    const examples = latest.endpoints.flatMap((e) => e.examples.map((x) => ({ endpoint: e.name, ...x })))
    if (examples.length > 0) {
      lines.push(
        '',
        '### Examples',
        '',
        '| endpoint | path | class | status | primary | shadow | primary after |',
        '|---|---|---|---|---|---|---|',
      )
      for (const x of examples.slice(0, 40)) {
        lines.push(
          `| ${x.endpoint} | \`${x.path}\` | ${x.class} | ${x.status} | ${cell(x.primary)} | ${cell(x.shadow)} | ${cell(x.primaryAfter)} |`,
        )
      }
    }
    lines.push('', '### Waivers', '')
    if (latest.waivers.length === 0) lines.push('None.')
    for (const w of latest.waivers) {
      lines.push(
        `- ${w.id} (${w.endpoint} \`${w.path}\`, ${w.owner}, expires ${w.expires}${w.expired ? ', EXPIRED' : ''}): suppressed ${w.suppressed}`,
      )
    }
  }
  return `${lines.join('\n')}\n`
}
