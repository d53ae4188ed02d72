import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { freePort } from './ws-sink.ts'

/** A tracker run as `overlord-ts serve` in its own process, as operators run it. */
export interface TrackerProcess {
  port: number
  url: string
  wsUrl: string
  child: ChildProcess
  /** Everything it wrote to stderr so far. */
  stderr(): string
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>
  /** SIGTERM and wait (SIGKILL after 15 s). */
  stop(): Promise<void>
}

/** Starts `serve` with `env` on a free port (or `port`) and waits until it answers `/metrics.json`. */
export async function spawnTracker(
  env: Record<string, string>,
  options: { args?: string[]; port?: number; waitMs?: number } = {},
): Promise<TrackerProcess> {
  const port = options.port ?? (await freePort())
  let err = ''
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve', ...(options.args ?? [])], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8')
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (options.waitMs ?? 30_000)
  for (;;) {
    if (child.exitCode !== null) throw new Error(`tracker exited ${child.exitCode} at start:\n${err}`)
    try {
      const res = await fetch(`${url}/metrics.json`)
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`tracker did not come up:\n${err}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    port,
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    child,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}
