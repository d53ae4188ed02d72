import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { GateStatus } from './gate.ts'
import { readLedger, readShadowReadWindow, readSweep } from './ledger.ts'
import { buildReportData } from './report-data.ts'
import { renderHtml } from './report-html.ts'
import { renderMarkdown } from './report-markdown.ts'

/** Rebuilds `report.md` and `report.html` in `dir` from the ledger and the latest sweep file. */
export async function writeReports(
  dir: string,
  options: { gate?: GateStatus; nowMs?: number } = {},
): Promise<{ markdown: string; html: string; sweeps: number }> {
  const { entries, skipped, shadowReads } = await readLedger(dir)
  const last = entries.at(-1)
  const latest = last === undefined ? undefined : await readSweep(dir, last.id)
  // Users' reads (shadow-read): examples from the latest window that had a mismatch, else the latest.
  const shown = shadowReads.findLast((e) => e.mismatched > 0) ?? shadowReads.at(-1)
  const examples = shown === undefined ? undefined : await readShadowReadWindow(dir, shown.id)
  const data = buildReportData(entries, latest, options.gate, options.nowMs ?? Date.now(), skipped, {
    entries: shadowReads,
    examples,
  })
  const markdown = join(dir, 'report.md')
  const html = join(dir, 'report.html')
  await writeFile(markdown, renderMarkdown(data))
  await writeFile(html, renderHtml(data))
  return { markdown, html, sweeps: entries.length }
}
