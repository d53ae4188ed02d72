import { spawnSync } from 'node:child_process'

/**
 * The Python that has Debian's packages (a pyenv shim on PATH may not): `$PYTHON`, then
 * `/usr/bin/python3`, then `python3`, whichever imports every module named. Throws when none can.
 */
export function findPython(modules: readonly string[] = ['websockets']): string {
  const candidates = [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c)
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' })
    if (probe.status === 0) return candidate
  }
  const packages = modules.map((m) => `python3-${m}`).join(' ')
  throw new Error(`no python3 with ${modules.join(', ')}: apt-get install -y ${packages}`)
}
