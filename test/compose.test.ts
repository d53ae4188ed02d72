import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { unhealthy } from '../docker/healthcheck.ts'
import { PRIMARY_DATABASE, SHADOW_DATABASE, trackerConfigFromEnv } from '../src/cli/tracker-config.ts'
import {
  type ComposeService,
  dependsOn,
  EXAMPLE_ENV,
  environmentOf,
  healthArgv,
  interpolate,
  isPostgresUrl,
  LIVE_FILE,
  mountsOf,
  portsOf,
  READER,
  ROOT,
  readCompose,
  readEnvFile,
  SHADOW_FILE,
  stringsIn,
  variablesIn,
} from './support/compose.ts'
import { readDockerfile, runtimePackages } from './support/image.ts'

/** The port plan (README): what each service may publish, on loopback only. */
const PORT_PLAN: Record<string, number[]> = { 'overlord-ts': [8766], 'overlord-tee': [8770] }
const POSTGRES_URL = /postgres(?:ql)?:\/\/[^\s"']+/g

const shadow = await readCompose(SHADOW_FILE)
const live = await readCompose(LIVE_FILE)
const exampleEnv = await readEnvFile(EXAMPLE_ENV)
/** What the services see once compose has interpolated them with docker/example.env. */
const composed = (name: string): ComposeService => interpolate(shadow.services[name]!, exampleEnv)
const ours = Object.keys(shadow.services)

describe('docker-compose.shadow.yml over the live stack', () => {
  it('only adds services: none redefines, depends on or mounts anything of the live stack', () => {
    const liveServices = Object.keys(live.services)
    expect(liveServices).toEqual(expect.arrayContaining(['dereth-tracker', 'db']))
    expect(ours.filter((s) => liveServices.includes(s))).toEqual([])
    for (const name of ours) {
      expect(
        dependsOn(shadow.services[name]!).filter((d) => !ours.includes(d)),
        name,
      ).toEqual([])
      const named = mountsOf(composed(name)).filter((m) => m.named)
      expect(
        named.filter((m) => Object.keys(live.volumes ?? {}).includes(m.source)),
        name,
      ).toEqual([])
      expect(
        named.filter((m) => !Object.keys(shadow.volumes ?? {}).includes(m.source)),
        `${name}: undeclared volume`,
      ).toEqual([])
    }
  })

  it('publishes on 127.0.0.1 only, at the ports of the port plan, and checks health on them', () => {
    for (const name of ours) {
      const ports = portsOf(shadow.services[name]!)
      expect(ports.map((p) => p.hostIp)).toEqual(ports.map(() => '127.0.0.1'))
      expect(
        ports.map((p) => p.published),
        name,
      ).toEqual(PORT_PLAN[name] ?? [])
      expect(
        ports.map((p) => p.target),
        name,
      ).toEqual(PORT_PLAN[name] ?? [])
      for (const port of PORT_PLAN[name] ?? [])
        expect(shadow.services[name]!.healthcheck?.test, name).toContain(`http://127.0.0.1:${port}/health`)
    }
    expect(environmentOf(composed('overlord-ts')).PORT).toBe('8766')
    expect(composed('overlord-tee').command).toEqual(expect.arrayContaining(['--listen', '0.0.0.0:8770']))
  })

  it('gives every service a health check and a restart policy (the watcher stays stopped after cutover)', () => {
    for (const name of ours) {
      const s = shadow.services[name]!
      expect(s.healthcheck?.disable, name).not.toBe(true)
      expect(['CMD', 'CMD-SHELL'], name).toContain((s.healthcheck?.test as string[] | undefined)?.[0])
      expect(['unless-stopped', 'always', 'on-failure'], name).toContain(s.restart)
    }
    // `watch` exits 0 once cutover is declared: unless-stopped would start it again and again.
    expect(shadow.services['overlord-watch']!.restart).toBe('on-failure')
    expect(composed('shadow-db').healthcheck?.test).toEqual([
      'CMD-SHELL',
      expect.stringMatching(/^pg_isready -h 127\.0\.0\.1 .*-d dereth_ts$/),
    ])
  })

  it('keeps the watcher’s ledger and reports on a named volume, and its health check reads that ledger', () => {
    const watch = composed('overlord-watch')
    const dir = watch.command![watch.command!.indexOf('--reports') + 1]!
    const mount = mountsOf(watch).find((m) => m.target === dir)
    expect(mount).toMatchObject({ named: true, readOnly: false })
    expect(Object.keys(shadow.volumes ?? {})).toContain(mount!.source)
    expect(healthArgv(watch.healthcheck?.test)).toEqual(
      expect.arrayContaining(['--fresh', `${dir}/ledger.ndjson`]),
    )
  })

  it('gives nothing write access to dereth: tracker and tee know only dereth_ts, the watcher reads as overlord_ro', () => {
    const databaseUrls = (name: string) =>
      stringsIn(composed(name)).flatMap((s) => [...s.matchAll(POSTGRES_URL)].map((m) => new URL(m[0])))
    for (const name of ours) {
      for (const url of databaseUrls(name)) {
        const database = url.pathname.slice(1)
        expect([PRIMARY_DATABASE, SHADOW_DATABASE], `${name}: ${url.pathname}`).toContain(database)
        if (database === PRIMARY_DATABASE) expect(url.username, name).toBe(READER)
      }
      // libpq's own variables would give a process a database outside its URLs.
      if (name !== 'shadow-db')
        expect(
          Object.keys(environmentOf(composed(name))).filter((k) => /^PG[A-Z]/.test(k)),
          name,
        ).toEqual([])
    }
    for (const name of ['overlord-ts', 'overlord-tee'])
      for (const url of databaseUrls(name))
        expect([url.hostname, url.pathname]).toEqual(['shadow-db', '/dereth_ts'])
    const watch = environmentOf(composed('overlord-watch'))
    const primaryDb = new URL(watch.PRIMARY_DB_URL!)
    const shadowDb = new URL(watch.SHADOW_DB_URL!)
    expect([primaryDb.username, primaryDb.pathname]).toEqual([READER, '/dereth'])
    expect([shadowDb.username, shadowDb.hostname, shadowDb.pathname]).toEqual([
      READER,
      'shadow-db',
      '/dereth_ts',
    ])
    // The live database's own credentials (its superuser password) appear nowhere in this file.
    const liveDbVariables = new Set(
      variablesIn([live.services.db, stringsIn(live).filter(isPostgresUrl)]).map((v) => v.name),
    )
    expect(variablesIn(shadow).filter((v) => liveDbVariables.has(v.name))).toEqual([])
  })

  it('runs the tracker as a shadow: dereth_ts, port 8766 below /ts, every side effect off', () => {
    const env = environmentOf(composed('overlord-ts'))
    expect(env.TRACKER_ROLE).toBe('shadow')
    expect(Object.keys(env).filter((k) => k.startsWith('ALLOW_'))).toEqual([])
    const config = trackerConfigFromEnv(env)
    expect(config.role).toBe('shadow')
    expect(new URL(config.tracker.databaseUrl!).pathname).toBe(`/${SHADOW_DATABASE}`)
    expect(config.tracker.readOnly).toBe(false)
    expect([config.port, config.tracker.basePath]).toEqual([8766, '/ts'])
    expect(config.tracker).toMatchObject({
      alertsEnabled: false,
      pluginSideEffects: false,
      inventoryWritesEnabled: false,
    })
  })

  it('lists every variable in docker/example.env, and gives no secret a default', () => {
    const used = new Set(variablesIn(shadow).map((v) => v.name))
    expect([...used].filter((v) => !(v in exampleEnv))).toEqual([])
    expect(Object.keys(exampleEnv).filter((v) => !used.has(v))).toEqual([])
    const secretDefaults = variablesIn(shadow).filter(
      (v) => /SECRET|PASSWORD/.test(v.name) && !v.op.endsWith('?') && v.arg !== '',
    )
    expect(secretDefaults).toEqual([])
    for (const name of ['SHADOW_SHARED_SECRET', 'OVERLORD_TEE_SECRET', 'SHADOW_DB_PASSWORD'])
      expect(
        variablesIn(shadow).filter((v) => v.name === name && v.op !== ':?'),
        name,
      ).toEqual([])
    expect(() => interpolate(shadow, { ...exampleEnv, LIVE_DB_READONLY_PASSWORD: '' })).toThrow(
      /LIVE_DB_READONLY_PASSWORD/,
    )
  })

  it('creates on dereth_ts the read-only role the watcher connects as, at the first start of shadow-db', async () => {
    const db = composed('shadow-db')
    const script = await readFile(join(ROOT, 'docker/shadow-db-init.sh'), 'utf8')
    const mounts = mountsOf(db)
    const hook = mounts.find(
      (m) => m.source === join(exampleEnv.OVERLORD_TS_DIR!, 'docker/shadow-db-init.sh'),
    )
    expect(hook?.target).toMatch(/^\/docker-entrypoint-initdb\.d\/[^/]+\.sh$/)
    const sql = mounts.find((m) => m.source === join(exampleEnv.OVERLORD_TS_DIR!, 'docker/readonly-role.sql'))
    expect(script).toContain(`\${OVERLORD_READONLY_SQL:-${sql?.target}}`)
    expect(script).toContain(`\${SHADOW_DB_READONLY_USER:-${READER}}`)
    // The password the hook sets is the one the watcher's URL carries.
    const namesIn = (value: unknown) => variablesIn(value).map((v) => v.name)
    const watcherPassword = namesIn(environmentOf(shadow.services['overlord-watch']!).SHADOW_DB_URL)
    expect(watcherPassword).toHaveLength(1)
    expect(namesIn(shadow.services['shadow-db']!.environment)).toEqual(
      expect.arrayContaining(watcherPassword),
    )
    expect((await stat(join(ROOT, 'docker/shadow-db-init.sh'))).mode & 0o111).not.toBe(0)
  })
})

describe('the Dockerfile', () => {
  it('runs as a numeric non-root user, checks its health with node and bakes in BUILD_VERSION', async () => {
    const stages = await readDockerfile()
    const final = stages.at(-1)!
    const last = (keyword: string) => final.instructions.filter((i) => i.keyword === keyword).at(-1)?.args
    expect(final.image).toMatch(/^node:24\b/)
    expect(last('USER')).toMatch(/^[1-9][0-9]*(:[0-9]+)?$/)
    expect(last('HEALTHCHECK')).toMatch(/\bCMD \["node",/)
    expect(last('ARG')).toMatch(/^BUILD_VERSION\b/)
    expect(last('ENV')).toBe(`BUILD_VERSION=\${BUILD_VERSION}`)
    for (const name of ['overlord-ts', 'overlord-tee', 'overlord-watch'])
      expect(composed(name).build?.args?.BUILD_VERSION, name).toBe(exampleEnv.BUILD_VERSION)
    expect(await unhealthy(['--fresh', 'package.json'], {})).toMatch(/usage/)
  })

  it('installs every package src/ loads at run time: each one is a production dependency', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
    }
    const files = [
      ...(await readdir(join(ROOT, 'src'), { recursive: true }))
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
        .map((f) => join('src', f)),
      'bin/overlord-ts.js',
      'docker/healthcheck.ts',
    ]
    const missing: string[] = []
    for (const file of files)
      for (const name of runtimePackages(file, await readFile(join(ROOT, file), 'utf8')))
        if (!(name in pkg.dependencies)) missing.push(`${file}: ${name}`)
    expect(files.length).toBeGreaterThan(50)
    expect(missing).toEqual([])
  })
})
