import { spawn } from 'node:child_process'
import { once } from 'node:events'

/** What one run of the real CLI printed, and how it ended. */
export interface CliRun {
  code: number | null
  stdout: string
  /** stderr, split into lines (the trailing newline dropped). */
  stderr: string[]
}

/** Runs the real CLI (`node src/cli/main.ts …`) with only `env` (and PATH) in its environment. */
export async function overlord(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const child = spawn(process.execPath, ['src/cli/main.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => {
    stdout += d
  })
  child.stderr.on('data', (d: Buffer) => {
    stderr += d
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr: stderr.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1) }
}
