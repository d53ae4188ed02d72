import type { DatabaseParity, ParityCheck } from './db-parity.ts'
import { count, percent, plural } from './figures.ts'
import type { ReportData } from './report-data.ts'
import { checkRow, databaseChecks } from './report-data.ts'

const esc = (v: unknown): string =>
  String(v).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')
const json = (v: unknown): string => (v === undefined ? '—' : esc(JSON.stringify(v)))
const pct = (x: number) => `${(x * 100).toFixed(2)} %`

/** A line chart of parity (0–100 %) per time bucket; gaps where an endpoint was not swept. */
function parityChart(name: string, series: readonly (number | null)[]): string {
  const w = 480
  const h = 120
  const pad = 24
  const step = (w - pad * 2) / Math.max(1, series.length - 1)
  const y = (v: number) => h - pad - v * (h - pad * 2)
  const segments: string[] = []
  let current: string[] = []
  series.forEach((v, i) => {
    if (v === null) {
      if (current.length) segments.push(current.join(' '))
      current = []
      return
    }
    current.push(`${(pad + i * step).toFixed(1)},${y(v).toFixed(1)}`)
  })
  if (current.length) segments.push(current.join(' '))
  const points = series
    .map((v, i) =>
      v === null
        ? ''
        : `<circle cx="${(pad + i * step).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2" fill="${v === 1 ? '#2a7' : '#c33'}"/>`,
    )
    .join('')
  return `<svg class="parity-chart" data-endpoint="${esc(name)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="parity over time for ${esc(name)}">
<rect x="0" y="0" width="${w}" height="${h}" fill="#fafafa" stroke="#ddd"/>
<line x1="${pad}" y1="${y(1)}" x2="${w - pad}" y2="${y(1)}" stroke="#ccc" stroke-dasharray="3 3"/>
<text x="2" y="${y(1) + 4}" font-size="9">100%</text><text x="2" y="${y(0) + 4}" font-size="9">0%</text>
${segments.map((s) => `<polyline points="${s}" fill="none" stroke="#36c" stroke-width="1.5"/>`).join('')}${points}
<text x="${pad}" y="14" font-size="11" font-weight="bold">${esc(name)}</text></svg>`
}

function sparkline(series: readonly number[]): string {
  const w = 120
  const h = 24
  const max = Math.max(1, ...series)
  const step = w / Math.max(1, series.length)
  const bars = series
    .map((v, i) =>
      v === 0
        ? ''
        : `<rect x="${(i * step).toFixed(1)}" y="${(h - (v / max) * h).toFixed(1)}" width="${Math.max(1, step - 0.5).toFixed(1)}" height="${((v / max) * h).toFixed(1)}" fill="#c33"/>`,
    )
    .join('')
  return `<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">${bars}</svg>`
}

/** A value for a table cell: JSON, capped, escaped; absent (no row) shown as a dash. */
function shortJson(v: unknown): string {
  const s = v === undefined ? '—' : JSON.stringify(v)
  return esc(s.length > 200 ? `${s.slice(0, 197)}…` : s)
}

const text = (v: unknown): string => (v === undefined || v === null ? '' : esc(v))

function checkTable(id: string, checks: readonly ParityCheck[]): string {
  const rows = checks.map(
    (c) =>
      `<tr data-ok="${c.ok}"><td>${text(c.table ?? c.name)}</td><td><code>${text(c.column)}</code></td><td>${text(checkRow(c))}</td><td><code>${text(c.path)}</code></td><td><code>${shortJson(c.primary)}</code></td><td><code>${shortJson(c.shadow)}</code></td><td class="${c.ok ? 'ok' : 'bad'}">${text(c.detail ?? (c.ok ? 'equal' : ''))}</td></tr>`,
  )
  return `<table id="${id}"><tr><th>table</th><th>column</th><th>row</th><th>path</th><th>primary</th><th>shadow</th><th>how</th></tr>
${rows.join('\n')}</table>`
}

/** The database checks of the latest sweep: every failing one (capped), then the first few others. */
function databaseTables(d: DatabaseParity, sweepId: string): string {
  const picked = databaseChecks(d)
  const parts = ['<h3>Database checks</h3>']
  if (picked.failing.length === 0) parts.push('<p>No failing check.</p>')
  else parts.push('<h4>Failing</h4>', checkTable('database-failing', picked.failing))
  if (picked.omittedFailing > 0) {
    parts.push(`<p>… and ${picked.omittedFailing} more failing checks in sweep-${esc(sweepId)}.json.</p>`)
  }
  if (picked.others.length > 0) {
    const total = picked.others.length + picked.omittedOthers
    parts.push(
      `<h4>Passing (${picked.others.length} of ${total})</h4>`,
      checkTable('database-passing', picked.others),
    )
  }
  return parts.join('\n')
}

/** Noise by field over the whole ledger, worst first: a field noisy one sweep in 200 shows here. */
function fieldNoiseTable(data: ReportData): string {
  const head = '<h2>Noise by field (whole ledger)</h2>'
  if (data.fieldNoise.length === 0) return `${head}<p>None.</p>`
  const rows = data.fieldNoise.slice(0, 100).map((f) => {
    const atLeast = f.incomplete > 0 ? '≥ ' : ''
    const peak = f.peakNoiseShare === null ? '—' : percent(f.peakNoiseShare, 'up')
    return `<tr><td>${esc(f.endpoint)}</td><td><code>${esc(f.signature)}</code></td><td>${count(f.sweeps)}</td><td>${atLeast}${count(f.noise)}</td><td>${atLeast}${count(f.explained)}</td><td>${atLeast}${count(f.mismatch)}</td><td>${atLeast}${percent(f.noiseRate, 'up')}</td><td>${peak}</td><td>${esc(f.lastNoise ?? '—')}</td></tr>`
  })
  const more = data.fieldNoise.length > 100 ? `<p>… and ${data.fieldNoise.length - 100} more fields.</p>` : ''
  return `${head}<p>In how many of its endpoint's sweeps each field was noise, explained or a mismatch; "peak" is the largest share of its values that were noise in one sweep; ≥ marks counts from capped ledger lines.</p>
<table id="field-noise"><tr><th>endpoint</th><th>field</th><th>sweeps</th><th>noise</th><th>explained</th><th>mismatch</th><th>noise rate</th><th>peak</th><th>last noise</th></tr>
${rows.join('\n')}</table>${more}`
}

/** Users' reads compared by `shadow-read`: volume, clean rate, drops and examples per route. */
function userReadsSection(data: ReportData): string {
  const u = data.userReads
  if (u === undefined) return ''
  const rate = u.compared === 0 ? '—' : percent(u.clean / u.compared, 'down')
  const parts = [
    `<section id="user-reads"><h2>User reads (shadow-read)</h2><p>${plural(u.windows, 'window')} (${esc(u.from)} → ${esc(u.to)}): ${count(u.requests)} requests through the proxy, ${count(u.compared)} compared with the shadow, clean ${rate}, ${count(u.mismatched)} mismatched.</p>`,
    '<table id="user-read-routes"><tr><th>route</th><th>requests</th><th>compared</th><th>clean</th><th>clean rate</th><th>mismatched</th><th>lag-explained</th><th>sampled out</th><th>dropped</th><th>shadow errors</th><th>not compared</th></tr>',
  ]
  for (const r of u.routes.slice(0, 80)) {
    const rateClass = r.cleanRate === null ? '' : r.cleanRate === 1 ? 'ok' : 'bad'
    parts.push(
      `<tr><td>${esc(r.route)}</td><td>${count(r.requests)}</td><td>${count(r.compared)}</td><td>${count(r.clean)}</td><td class="${rateClass}">${r.cleanRate === null ? '—' : percent(r.cleanRate, 'down')}</td><td>${count(r.mismatched)}</td><td>${count(r.lagExplained)}</td><td>${count(r.sampledOut)}</td><td>${count(r.dropped)}</td><td>${count(r.shadowErrors)}</td><td>${count(r.notCompared)}</td></tr>`,
    )
  }
  parts.push('</table>')
  const kinds = Object.entries(u.shadowErrorsByKind).filter(([, n]) => n > 0)
  if (kinds.length > 0)
    parts.push(`<p>Shadow errors: ${esc(kinds.map(([k, n]) => `${k} ${count(n)}`).join(', '))}.</p>`)
  if (u.clusters.length > 0) {
    parts.push(
      '<h3>Mismatch clusters in user reads</h3><table id="user-read-clusters"><tr><th>route</th><th>class</th><th>path</th><th>count</th><th>windows</th><th>last seen</th></tr>',
    )
    for (const c of u.clusters.slice(0, 100)) {
      parts.push(
        `<tr><td>${esc(c.route)}</td><td>${esc(c.class)}</td><td><code>${esc(c.signature)}</code></td><td>${count(c.count)}</td><td>${count(c.windows)}</td><td>${esc(c.lastSeen)}</td></tr>`,
      )
    }
    parts.push('</table>')
  }
  if (u.examples.length > 0) {
    parts.push(
      `<h3>User read examples (window <code>${esc(u.examplesFrom ?? '')}</code>)</h3><table id="user-read-examples"><tr><th>route</th><th>url</th><th>path</th><th>class</th><th>primary</th><th>shadow</th></tr>`,
    )
    for (const x of u.examples.slice(0, 100)) {
      parts.push(
        `<tr><td>${esc(x.route)}</td><td><code>${esc(x.url)}</code></td><td><code>${esc(x.path)}</code></td><td>${esc(x.class)}</td><td><code>${shortJson(x.primary)}</code></td><td><code>${shortJson(x.shadow)}</code></td></tr>`,
      )
    }
    parts.push('</table>')
  }
  parts.push('</section>')
  return parts.join('\n')
}

/**
 * The human report as one self-contained HTML page: inline CSS and SVG, no script, and a CSP that
 * forbids every network load, so it opens from disk and shows the same thing anywhere.
 */
export function renderHtml(data: ReportData): string {
  const latest = data.latest
  const gate = data.gate
  const verdict = latest?.verdict ?? 'no sweeps'
  const parts: string[] = []
  parts.push(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Parity report</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
code{font-size:12px}.ok{color:#2a7}.bad{color:#c33}.charts{display:flex;flex-wrap:wrap;gap:8px}
.verdict{font-size:20px;font-weight:bold}</style></head><body>`)
  parts.push(
    `<h1>Parity report</h1><p>Generated ${esc(data.generatedAt)} from <span id="sweep-count">${data.sweeps}</span> sweeps (${esc(data.from ?? '—')} → ${esc(data.to ?? '—')}).</p>`,
  )
  parts.push(
    `<p class="verdict">Latest verdict: <span id="verdict" class="${verdict === 'parity' ? 'ok' : 'bad'}">${esc(verdict)}</span></p>`,
  )
  if (gate !== undefined) {
    parts.push(
      `<h2>Cutover gate: <span id="gate" class="${gate.go ? 'ok' : 'bad'}">${gate.go ? 'GO' : 'NO-GO'}</span></h2><p id="gate-reasons">${esc(gate.reasons.join('; '))}.</p><table><tr><th>criterion</th><th>ok</th><th>figure</th><th>evidence</th></tr>`,
    )
    for (const c of gate.criteria) {
      parts.push(
        `<tr><td>${esc(c.description)}</td><td class="${c.ok ? 'ok' : 'bad'}">${c.ok ? 'yes' : 'no'}</td><td>${esc(c.figure)}</td><td>${esc(c.evidence)}</td></tr>`,
      )
    }
    parts.push('</table>')
  }
  parts.push('<h2>Parity over time per endpoint</h2><div class="charts">')
  for (const e of data.endpoints)
    parts.push(parityChart(`${e.name} — ${pct(e.cleanRate)} of ${e.sweeps}`, e.series))
  parts.push('</div>')
  parts.push('<h2>Diff clusters</h2>')
  if (data.clusters.length === 0) parts.push('<p>None.</p>')
  else {
    parts.push(
      '<table id="clusters"><tr><th>endpoint</th><th>class</th><th>path</th><th>status</th><th>total</th><th>sweeps</th><th>first seen</th><th>last seen</th><th>trend</th></tr>',
    )
    for (const c of data.clusters.slice(0, 100)) {
      parts.push(
        `<tr><td>${esc(c.endpoint)}</td><td>${esc(c.class)}</td><td><code>${esc(c.signature)}</code></td><td>${esc(c.status)}</td><td>${c.total}</td><td>${c.sweeps}</td><td>${esc(c.firstSeen)}</td><td>${esc(c.lastSeen)}</td><td>${sparkline(c.series)} ${esc(c.trend)}</td></tr>`,
      )
    }
    parts.push('</table>')
  }
  parts.push('<h2>Worst fields</h2>')
  if (data.worstFields.length === 0) parts.push('<p>None.</p>')
  else {
    parts.push('<ol>')
    for (const f of data.worstFields)
      parts.push(
        `<li><code>${esc(f.signature)}</code>: ${f.mismatches} (${esc(f.endpoints.join(', '))})</li>`,
      )
    parts.push('</ol>')
  }
  parts.push(fieldNoiseTable(data))
  parts.push(userReadsSection(data))
  if (latest !== undefined) {
    parts.push(`<h2>Latest sweep <code>${esc(latest.id)}</code></h2><p>${latest.characters} characters, ${latest.requests} requests in ${latest.durationMs} ms.
Lag p50 ${esc(latest.lag.p50Ms ?? '—')} ms, p95 ${esc(latest.lag.p95Ms ?? '—')} ms, max ${esc(latest.lag.maxMs ?? '—')} ms (${esc(latest.lag.behind)} entities behind, ${esc(latest.lag.ahead)} ahead, ${esc(latest.lag.paired)} compared at the same frame); read gap p50 ${esc(latest.lag.readGapMs.p50 ?? '—')} ms.</p>`)
    if (latest.accounting !== undefined) {
      const a = latest.accounting
      parts.push(
        `<p>Input: mirrored ${esc(a.mirrored ?? '—')}, received ${esc(a.received ?? '—')}, applied ${esc(a.applied ?? '—')}, lost in transit ${esc(a.lostInTransit ?? '—')}, not applied ${esc(a.notApplied ?? '—')}.</p>`,
      )
    }
    if (latest.database !== undefined) {
      const d = latest.database
      parts.push(
        `<p>Database parity: worst ${pct(d.worstRelDiff)} over ${d.checks.length} checks; tee lag p95 ${esc(d.teeLagMs.p95 ?? '—')} ms.</p>`,
      )
      parts.push(databaseTables(d, latest.id))
    }
    if (latest.errors.length > 0) {
      parts.push('<h3>Errors</h3><ul id="errors">')
      for (const e of latest.errors.slice(0, 50))
        parts.push(`<li>${esc(e.side)} <code>${esc(e.url)}</code>: ${esc(e.code)} ${esc(e.message)}</li>`)
      parts.push('</ul>')
    }
    const examples = latest.endpoints.flatMap((e) => e.examples.map((x) => ({ endpoint: e.name, ...x })))
    parts.push('<h3>Side by side</h3>')
    if (examples.length === 0) parts.push('<p>No differences.</p>')
    else {
      parts.push(
        '<table id="examples"><tr><th>endpoint</th><th>path</th><th>class</th><th>status</th><th>primary</th><th>shadow</th><th>primary after</th></tr>',
      )
      for (const x of examples.slice(0, 100)) {
        parts.push(
          `<tr><td>${esc(x.endpoint)}</td><td><code>${esc(x.path)}</code></td><td>${esc(x.class)}</td><td>${esc(x.status)}</td><td><code>${json(x.primary)}</code></td><td><code>${json(x.shadow)}</code></td><td><code>${json(x.primaryAfter)}</code></td></tr>`,
        )
      }
      parts.push('</table>')
    }
    parts.push('<h3>Waivers</h3>')
    if (latest.waivers.length === 0) parts.push('<p>None.</p>')
    else {
      parts.push(
        '<table><tr><th>id</th><th>endpoint</th><th>path</th><th>owner</th><th>expires</th><th>suppressed</th></tr>',
      )
      for (const w of latest.waivers) {
        parts.push(
          `<tr><td>${esc(w.id)}</td><td>${esc(w.endpoint)}</td><td><code>${esc(w.path)}</code></td><td>${esc(w.owner)}</td><td class="${w.expired ? 'bad' : ''}">${esc(w.expires)}</td><td>${w.suppressed}</td></tr>`,
        )
      }
      parts.push('</table>')
    }
  }
  parts.push('</body></html>\n')
  return parts.join('\n')
}
