import { spawnSync } from 'node:child_process'

/**
 * The Python that has Debian's `python3-websockets` (a pyenv shim on PATH may not): `$PYTHON`,
 * then `/usr/bin/python3`, then `python3`. Throws when none can import websockets.
 */
export function findPython(): string {
  const candidates = [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c)
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import websockets'], { stdio: 'ignore' })
    if (probe.status === 0) return candidate
  }
  throw new Error('no python3 with websockets: apt-get install -y python3-websockets')
}
