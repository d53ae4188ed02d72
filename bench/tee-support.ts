/** Shared pieces of the tee benchmarks: child processes, percentiles, a free port. */
import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as net.AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

/** Spawns a child and resolves once `port` accepts TCP connections. */
export async function startChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  port: number,
): Promise<ChildProcess> {
  const child = spawn(cmd, args, {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['pipe', 'ignore', 'inherit'],
  })
  for (let i = 0; i < 300; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (up) return child
    await sleep(100)
  }
  child.kill()
  throw new Error(`${cmd} ${args.join(' ')} did not listen on ${port}`)
}

export function percentiles(samples: number[]): { p50: number; p99: number; mean: number; n: number } {
  const s = [...samples].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
  return { p50: at(0.5), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length, n: s.length }
}

export const now = (): number => performance.timeOrigin + performance.now()

export const NODE = process.execPath

/** `serve` on its own database (a child of the bench); resolves with its port. */
export async function startServe(
  databaseUrl: string,
  secret: string,
  children: ChildProcess[],
): Promise<number> {
  const port = await freePort()
  children.push(
    await startChild(
      NODE,
      ['src/cli/main.ts', 'serve'],
      { PORT: String(port), SHARED_SECRET: secret, DATABASE_URL: databaseUrl },
      port,
    ),
  )
  return port
}

/** `tee proxy` in front of the primary's port, mirroring into the shadow's; resolves with its port. */
export async function startTeeProxy(
  primaryPort: number,
  shadowPort: number,
  secret: string,
  children: ChildProcess[],
): Promise<number> {
  const port = await freePort()
  children.push(
    await startChild(
      NODE,
      [
        'src/cli/main.ts',
        'tee',
        'proxy',
        '--listen',
        `127.0.0.1:${port}`,
        '--primary',
        `ws://127.0.0.1:${primaryPort}`,
        '--shadow',
        `ws://127.0.0.1:${shadowPort}/ws/position`,
      ],
      { SHADOW_PLUGIN_SECRET: secret },
      port,
    ),
  )
  return port
}
