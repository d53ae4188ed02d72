import type { ReportData } from './report-data.ts'

const pct = (x: number) => `${(x * 100).toFixed(2)} %`
const cell = (v: unknown) => {
  const s = v === undefined ? '—' : JSON.stringify(v)
  return (s.length > 60 ? `${s.slice(0, 57)}…` : s).replaceAll('|', '\\|')
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
  const latest = data.latest
  if (latest !== undefined) {
    lines.push('', `## Latest sweep ${latest.id}: ${latest.verdict}`, '')
    lines.push(
      `${latest.characters} characters, ${latest.requests} requests in ${latest.durationMs} ms. ` +
        `Lag p50 ${latest.lag.p50Ms ?? '—'} ms, p95 ${latest.lag.p95Ms ?? '—'} ms, max ${latest.lag.maxMs ?? '—'} ms ` +
        `(${latest.lag.samples} samples); read gap p50 ${latest.lag.readGapMs.p50 ?? '—'} ms.`,
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
      for (const c of d.checks.filter((x) => !x.ok).slice(0, 20)) {
        lines.push(`- ${c.name}: primary ${c.primary}, shadow ${c.shadow}`)
      }
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
