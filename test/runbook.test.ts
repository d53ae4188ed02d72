import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCommand } from '../src/cutover/switch.ts'
import { withDatabase } from '../src/db/pool.ts'
import { parseDuration } from '../src/util/duration.ts'
import { adminQuery, freshDatabaseName, TEST_SERVER_URL } from './support/db.ts'
import { NGINX, writeSandboxNginxConf } from './support/nginx.ts'
import { type PluginFleet, startPluginFleet } from './support/plugin-fleet.ts'
import { findPython } from './support/python.ts'
import { exportedNames, parseRunbook, referencedNames } from './support/runbook.ts'
import { freePort } from './support/ws-sink.ts'

/**
 * docs/RUNBOOK.md cannot rot: every `sh` block in it runs here, in order, against a sandbox built of
 * real parts (PostgreSQL, nginx, the Python tracker with the drop-in tee, a plugin fleet), with the
 * runbook's settings pointed at the sandbox. A block that exits other than its `expect` fails the
 * test with its output.
 */

const RUNBOOK = readFileSync('docs/RUNBOOK.md', 'utf8')
const blocks = parseRunbook(RUNBOOK)

/** Names a block may use that the settings need not define. */
const AMBIENT = new Set(['PATH', 'HOME'])

describe('docs/RUNBOOK.md', () => {
  const settings = blocks.find((b) => b.settings)

  it('defines every variable its commands use, and names a real script for the rest', () => {
    expect(settings, 'a settings block').toBeDefined()
    const defined = new Set(exportedNames(settings!.code))
    for (const b of blocks.filter((x) => !x.settings)) {
      for (const name of referencedNames(b.code)) {
        if (!AMBIENT.has(name)) expect(defined.has(name), `RUNBOOK.md:${b.line} uses $${name}`).toBe(true)
      }
      if (b.health !== undefined)
        for (const name of referencedNames(b.health))
          expect(defined.has(name), `RUNBOOK.md:${b.line}`).toBe(true)
      if (b.ci !== undefined) {
        const script = readFileSync(b.ci, 'utf8')
        for (const line of b.code.split('\n').filter((l) => l.trim() !== ''))
          expect(script, `RUNBOOK.md:${b.line}: ${b.ci} runs "${line}"`).toContain(line.trim())
      }
    }
    const phases = new Set(blocks.map((b) => b.phase.split(':')[0]))
    expect([...phases]).toEqual(['Settings', 'Phase 0', 'Phase 1', 'Phase 2', 'Phase 3', 'Phase 4'])
  })

  describe('every command, in order, in a sandbox', () => {
    const dir = mkdtempSync(join(tmpdir(), 'overlord-runbook-'))
    const env: Record<string, string> = {}
    const services = new Map<string, ChildProcess>()
    let fleet: PluginFleet | undefined
    const dbs = [freshDatabaseName(), freshDatabaseName()]
    const role = `overlord_ro_${randomBytes(3).toString('hex')}`

    beforeAll(async () => {
      const [primaryPort, shadowPort, tsPrimaryPort, shadowReadPort, teePort, nginxPort] = await Promise.all(
        Array.from({ length: 6 }, () => freePort()),
      )
      const bin = join(dir, 'bin')
      const confD = join(dir, 'conf.d')
      const snippets = join(dir, 'snippets')
      const logs = join(dir, 'logs')
      for (const d of [bin, confD, snippets, logs]) mkdirSync(d)
      const nginxConf = join(dir, 'nginx.conf')
      // The operator's `nginx` is this server's: the wrapper points it at the sandbox's configuration.
      writeFileSync(join(bin, 'nginx'), `#!/bin/sh\nexec ${NGINX} -c ${nginxConf} -p ${dir} "$@"\n`, {
        mode: 0o755,
      })
      writeSandboxNginxConf({
        dir,
        port: nginxPort!,
        http: [`${confD}/*.conf`],
        server: [`${snippets}/*.conf`],
        serverExtra: 'location = /sandbox-ready { return 204; }',
      })
      const secret = randomBytes(8).toString('hex')
      const teeSecret = randomBytes(8).toString('hex')
      Object.assign(env, {
        OVERLORD_TS: process.cwd(),
        PATH: `${bin}:${process.cwd()}/bin:${process.env.PATH ?? ''}`,
        HOME: dir,
        PRIMARY: `http://127.0.0.1:${primaryPort}`,
        SHADOW: `http://127.0.0.1:${shadowPort}`,
        TS_PRIMARY: `http://127.0.0.1:${tsPrimaryPort}`,
        SHADOW_PORT: String(shadowPort),
        TS_PRIMARY_PORT: String(tsPrimaryPort),
        SHADOW_READ_LISTEN: `127.0.0.1:${shadowReadPort}`,
        TEE_LISTEN: `127.0.0.1:${teePort}`,
        PG: TEST_SERVER_URL.replace(/\/[^/]*$/, ''),
        DERETH: dbs[0]!,
        DERETH_TS: dbs[1]!,
        PG_WRITER: TEST_SERVER_URL.replace(/\/[^/]*$/, ''),
        RO_ROLE: role,
        RO_PASSWORD: randomBytes(8).toString('hex'),
        SHARED_SECRET: secret,
        SECRET_KEY: randomBytes(16).toString('hex'),
        TEE_SECRET: teeSecret,
        ADMIN_USER: 'ops',
        ADMIN_PASSWORD: randomBytes(8).toString('hex'),
        REPORTS: join(dir, 'reports'),
        NGINX_CONF_D: confD,
        NGINX_SNIPPETS: snippets,
        NGINX_LIVE_INCLUDE: join(confD, 'dereth-live.conf'),
        LIVE_SITE: `http://127.0.0.1:${nginxPort}`,
        TRACKER_LOGS: logs,
        LOG_LEVEL: 'warn',
      })
      env.PRIMARY_DB_URL = `postgres://${role}:${env.RO_PASSWORD}@127.0.0.1:5432/${dbs[0]}`
      env.SHADOW_DB_URL = `postgres://${role}:${env.RO_PASSWORD}@127.0.0.1:5432/${dbs[1]}`
      // The live Python tracker, with the drop-in tee pointed at the receiver of phase 2, as a
      // service manager would run it; RESTART_PRIMARY is that manager's restart.
      const python = findPython(['fastapi', 'uvicorn', 'asyncpg', 'websockets'])
      const startPython = `DATABASE_URL=${withDatabase(TEST_SERVER_URL, dbs[0]!)} SHARED_SECRET=${secret} TZ=UTC OVERLORD_TEE_URL=ws://127.0.0.1:${teePort}/tee OVERLORD_TEE_SECRET=${teeSecret} ${python} ${process.cwd()}/test/python/legacy_tracker.py --port ${primaryPort} --host 127.0.0.1 >> ${logs}/python.log 2>&1 & echo $! > ${dir}/python.pid`
      env.RESTART_PRIMARY = `pid=$(cat ${dir}/python.pid); kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; ${startPython}`
      await adminQuery(`CREATE DATABASE ${dbs[0]}`)
      expect((await runCommand(startPython)).code).toBe(0)
      await waitHealthy(`${env.PRIMARY}/health`, 20_000, () => readLog(join(logs, 'python.log')))
      expect((await runCommand(`${NGINX} -c ${nginxConf} -p ${dir}`)).code).toBe(0)
      await waitHealthy(`${env.LIVE_SITE}/sandbox-ready`, 10_000, () => readLog(join(dir, 'error.log')))
      fleet = startPluginFleet({
        url: `${env.PRIMARY!.replace('http', 'ws')}/ws/position`,
        secret,
        characters: ['Aldo', 'Bérénice', 'Cyrus'],
        intervalMs: 500,
        startMs: Date.now(),
      })
    }, 60_000)

    afterAll(async () => {
      await fleet?.stop()
      for (const child of services.values()) await stopGroup(child)
      for (const pidFile of [join(dir, 'python.pid'), join(env.TRACKER_LOGS ?? dir, 'primary.pid')]) {
        try {
          process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL')
        } catch {
          // gone already
        }
      }
      if (existsSync(join(dir, 'nginx.pid'))) await runCommand(`${join(dir, 'bin', 'nginx')} -s quit`)
      await sleep(300)
      for (const db of dbs) await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
      await adminQuery(`DROP ROLE IF EXISTS ${role}`)
      rmSync(dir, { recursive: true, force: true })
    })

    for (const block of blocks.filter((b) => !b.settings && b.ci === undefined)) {
      const what = block.service
        ? `service ${block.service}`
        : block.stop
          ? `stop ${block.stop}`
          : block.code.split('\n')[0]
      it(`${block.phase}, RUNBOOK.md:${block.line}: ${what}`, async () => {
        if (block.wait !== undefined) await sleep(parseDuration(block.wait))
        if (block.stop !== undefined) {
          const child = services.get(block.stop)
          expect(child, `service ${block.stop} was started`).toBeDefined()
          await stopGroup(child!)
          services.delete(block.stop)
          return
        }
        if (block.service !== undefined) {
          const child = spawn('bash', ['-c', block.code], {
            env,
            cwd: process.cwd(),
            detached: true,
            stdio: 'ignore',
          })
          services.set(block.service, child)
          if (block.health !== undefined) {
            const url = expand(block.health, env)
            await waitHealthy(
              url,
              30_000,
              () => `${block.service} exited ${child.exitCode}; logs: ${readLog(env.TRACKER_LOGS!)}`,
            )
          } else {
            await sleep(1_000)
            expect(child.exitCode, `${block.service} still running`).toBeNull()
          }
          return
        }
        const run = await runBash(block.code, env)
        expect(
          run.code,
          `RUNBOOK.md:${block.line} exited ${run.code}, expected ${block.expect}\n${run.output}`,
        ).toBe(block.expect)
      }, 120_000)
    }
  })
})

/** `$NAME` expanded from `env` (for health URLs, which no shell sees). */
function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (_, name: string) => env[name] ?? '')
}

async function runBash(
  code: string,
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', code], {
    env,
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => {
    output += d
  })
  child.stderr.on('data', (d: Buffer) => {
    output += d
  })
  const exit = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code: exit, output }
}

async function waitHealthy(url: string, ms: number, explain: () => string): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.status < 300,
      () => false,
    )
    if (ok) return
    if (Date.now() > end) throw new Error(`${url} never answered: ${explain()}`)
    await sleep(200)
  }
}

/** SIGTERM to the service's whole process group (bash and what it runs), then waits for it. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    process.kill(-child.pid!, 'SIGTERM')
  } catch {
    return
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // gone
    }
  }, 15_000)
  await exited
  clearTimeout(timer)
}

/** The tail of a log file, or of every file in a log directory. */
function readLog(path: string): string {
  try {
    const files = statSync(path).isDirectory() ? readdirSync(path).map((f) => join(path, f)) : [path]
    return files.map((f) => `--- ${f}\n${readFileSync(f, 'utf8').slice(-1_500)}`).join('\n')
  } catch {
    return '(no log)'
  }
}
