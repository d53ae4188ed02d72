import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { findPython } from './python.ts'

const SCRIPT = new URL('../python/legacy_tracker.py', import.meta.url).pathname

export interface LegacyTrackerOptions {
  /** `postgres://…/<db>`; the database is created when missing. */
  databaseUrl: string
  /** `SHARED_SECRET`: what plugins must present (CONTRACT.md §2). */
  secret: string
  /** `SKIP_SCHEMA_INIT=true`: serve a schema someone else created. */
  skipSchemaInit?: boolean
  /** Listen port; 0 (the default) picks a free one. 8765 is the live primary's (port plan). */
  port?: number
  /** `BUILD_VERSION`, served by `/api-version`. */
  buildVersion?: string
  /** `SECRET_KEY`: reads then also accept an itsdangerous `session` cookie (CONTRACT.md §5). */
  secretKey?: string
  /**
   * The drop-in tee (legacy/overlord_tee.py): `OVERLORD_TEE_URL` (the mirror receiver's
   * `ws://…/tee`) and `OVERLORD_TEE_SECRET` (its `TEE_SECRET`). Off when absent.
   */
  tee?: { url: string; secret: string }
  /**
   * `LIVE_QUEUE_BYTES` (default 1 MiB): a `/ws/live` browser queued over it for 2 s, or over 8 times
   * it at once, is cut off with 1013 (CONTRACT.md §3).
   */
  liveQueueBytes?: number
}

/** The legacy tracker's `/metrics.json`. */
export interface LegacyMetrics {
  frames_received: number
  /** Frames whose handling is over: persisted, or dropped as bad or failed. */
  frames_handled: number
  frames_accepted: number
  /** Not JSON, not an object, or no `type` (CONTRACT.md §2). */
  frames_bad: number
  /** Valid JSON the handling failed on (an insert the database refused): logged and dropped. */
  frames_failed: number
  plugin_connections: number
  /** `/ws/live` browsers connected now. */
  browsers: number
  browser_messages_sent: number
  /** Browsers cut off with 1013 for falling behind (CONTRACT.md §3). */
  browser_slow_disconnects: number
}

/** A running legacy Python tracker (test/python/legacy_tracker.py). */
export interface LegacyTracker {
  /** `http://127.0.0.1:<port>`; plugins connect to `ws://…/ws/position`. */
  url: string
  port: number
  pid: number
  /** Everything it wrote to stderr so far (its log). */
  stderr(): string
  /** Its frame counters (`/metrics.json`); a frame is counted as handled once persisted or dropped. */
  metrics(): Promise<LegacyMetrics>
  /** SIGTERM (uvicorn's graceful shutdown), then waits for the exit; SIGKILL after 5 s. */
  stop(): Promise<void>
  /** Sends `signal` (a crash is `SIGKILL`) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
}

/**
 * Starts the legacy Python tracker on 127.0.0.1 and resolves once it listens (its schema is
 * ready by then). Rejects with its stderr when it exits first.
 */
export async function startLegacyTracker(options: LegacyTrackerOptions): Promise<LegacyTracker> {
  const python = findPython(['fastapi', 'uvicorn', 'asyncpg'])
  const child = spawn(python, [SCRIPT, '--port', String(options.port ?? 0), '--host', '127.0.0.1'], {
    env: {
      PATH: process.env.PATH ?? '',
      TZ: 'UTC',
      DATABASE_URL: options.databaseUrl,
      SHARED_SECRET: options.secret,
      SKIP_SCHEMA_INIT: options.skipSchemaInit === true ? 'true' : 'false',
      BUILD_VERSION: options.buildVersion ?? 'legacy-test',
      // Importing legacy/overlord_tee.py must not leave a __pycache__ in the repository.
      PYTHONDONTWRITEBYTECODE: '1',
      ...(options.secretKey === undefined ? {} : { SECRET_KEY: options.secretKey }),
      ...(options.tee === undefined
        ? {}
        : { OVERLORD_TEE_URL: options.tee.url, OVERLORD_TEE_SECRET: options.tee.secret }),
      ...(options.liveQueueBytes === undefined ? {} : { LIVE_QUEUE_BYTES: String(options.liveQueueBytes) }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  child.stderr.on('data', (d: Buffer) => {
    log += d
  })
  const exited = once(child, 'exit')
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port))
    exited.then(
      ([code]) => reject(new Error(`legacy tracker exited (${code}) before listening:\n${log}`)),
      reject,
    )
  })
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    stderr: () => log,
    metrics: async () =>
      (await (await fetch(`http://127.0.0.1:${port}/metrics.json`)).json()) as LegacyMetrics,
    kill,
    async stop() {
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000)
      try {
        await kill('SIGTERM')
      } finally {
        clearTimeout(force)
      }
    },
  }
}
