/**
 * docs/RUNBOOK.md as data: its `sh` blocks in order, with what each one is. The runbook test runs
 * them; a block that cannot run in the sandbox names the CI script that does (`ci=FILE`).
 *
 * Info string tokens after `sh`:
 *   settings        the variables every other block uses (the sandbox provides its own values)
 *   ci=FILE         run by FILE instead: each of the block's lines must appear there verbatim
 *   service=NAME    a long-running command (what a service manager runs), started in the background
 *   health=URL      with service: ready once URL answers 200
 *   stop=NAME       stop the service NAME (SIGTERM, as a service manager does)
 *   wait=DURATION   wait this long before running the block
 *   expect=N        the exit code that means "as expected" (default 0)
 */
export interface RunbookBlock {
  /** 1-based line of the opening fence. */
  line: number
  /** The phase heading the block is under. */
  phase: string
  code: string
  settings: boolean
  ci?: string
  service?: string
  health?: string
  stop?: string
  wait?: string
  expect: number
}

export function parseRunbook(text: string): RunbookBlock[] {
  const blocks: RunbookBlock[] = []
  const lines = text.split('\n')
  let phase = ''
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.*)$/.exec(lines[i]!)
    if (heading) phase = heading[1]!
    const fence = /^```sh(?:\s+(.*))?$/.exec(lines[i]!)
    if (fence === null) continue
    const start = i
    const body: string[] = []
    for (i += 1; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!)
    const tokens = new Map<string, string>()
    for (const t of (fence[1] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const eq = t.indexOf('=')
      tokens.set(eq < 0 ? t : t.slice(0, eq), eq < 0 ? '' : t.slice(eq + 1))
    }
    const known = new Set(['settings', 'ci', 'service', 'health', 'stop', 'wait', 'expect'])
    for (const k of tokens.keys()) {
      if (!known.has(k)) throw new Error(`RUNBOOK.md:${start + 1}: unknown block token ${k}`)
    }
    blocks.push({
      line: start + 1,
      phase,
      code: body.join('\n'),
      settings: tokens.has('settings'),
      ...(tokens.has('ci') ? { ci: tokens.get('ci') } : {}),
      ...(tokens.has('service') ? { service: tokens.get('service') } : {}),
      ...(tokens.has('health') ? { health: tokens.get('health') } : {}),
      ...(tokens.has('stop') ? { stop: tokens.get('stop') } : {}),
      ...(tokens.has('wait') ? { wait: tokens.get('wait') } : {}),
      expect: Number(tokens.get('expect') ?? 0),
    })
  }
  return blocks
}

/** The variables a settings block exports, in order. */
export function exportedNames(code: string): string[] {
  const names: string[] = []
  for (const line of code.split('\n')) {
    const m = /^export\s+(.*)$/.exec(line.trim())
    if (m === null) continue
    for (const assignment of m[1]!.matchAll(/([A-Z_][A-Z0-9_]*)=/g)) names.push(assignment[1]!)
  }
  return names
}

/** `$NAME` and `${NAME...}` references in a block (shell escapes `\$` excluded). */
export function referencedNames(code: string): Set<string> {
  const names = new Set<string>()
  for (const m of code.matchAll(/(?<!\\)\$(?:\{([A-Z_][A-Z0-9_]*)|([A-Z_][A-Z0-9_]*))/g))
    names.add((m[1] ?? m[2])!)
  return names
}
