import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'

/**
 * The compose files read the way docker compose reads them, for the compose tests: parsed with
 * `yaml` (merge keys on) and interpolated with compose's variable syntax. The image is image.ts.
 */

export const ROOT = resolve(import.meta.dirname, '../..')
export const SHADOW_FILE = 'docker-compose.shadow.yml'
/** The stand-in of the live stack's compose file, the one docker-compose.shadow.yml overrides. */
export const LIVE_FILE = 'docker/live-stack.example.yml'
/** Every variable of docker-compose.shadow.yml, with a placeholder value. */
export const EXAMPLE_ENV = 'docker/example.env'
/** The role docker/readonly-role.sql creates on both databases; the only user a `dereth` URL may name. */
export const READER = 'overlord_ro'

export const isPostgresUrl = (s: string): boolean => /^postgres(?:ql)?:\/\//.test(s)

export interface ComposeService {
  image?: string
  build?: { context?: string; args?: Record<string, string> }
  command?: string[]
  environment?: Record<string, string> | string[]
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[]
  volumes?: (string | { source?: string; target: string; read_only?: boolean })[]
  healthcheck?: { test?: string[] | string; disable?: boolean }
  restart?: string
  depends_on?: string[] | Record<string, unknown>
}

export interface ComposeFile {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
}

export async function readCompose(file: string): Promise<ComposeFile> {
  return parse(await readFile(join(ROOT, file), 'utf8'), { merge: true }) as ComposeFile
}

/** A service's environment as a map, whichever of compose's two forms it is written in. */
export function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {}
  if (!Array.isArray(env))
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v ?? '')]))
  return Object.fromEntries(env.map((line) => [line.split('=')[0]!, line.split('=').slice(1).join('=')]))
}

export const dependsOn = (service: ComposeService): string[] =>
  Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {})

/** A `${...}` or `$NAME` reference: the variable, its operator (`:-`, `-`, `:?`, `?` or '') and argument. */
export interface VariableRef {
  name: string
  op: string
  arg: string
}

const VARIABLE = /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g

/** Every string inside `value`, depth first. */
export function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(stringsIn)
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsIn)
  return []
}

export function variablesIn(value: unknown): VariableRef[] {
  return stringsIn(value).flatMap((s) =>
    [...s.matchAll(VARIABLE)]
      .filter((m) => m[0] !== '$$')
      .map((m) => ({ name: (m[1] ?? m[4])!, op: m[2] ?? '', arg: m[3] ?? '' })),
  )
}

/** Compose's interpolation of every string in `value`; a required variable that is unset throws. */
export function interpolate<T>(value: T, vars: Record<string, string | undefined>): T {
  const one = (s: string): string =>
    s.replace(VARIABLE, (whole, braced?: string, op = '', arg = '', bare?: string) => {
      if (whole === '$$') return '$'
      const v = vars[(braced ?? bare)!]
      const unset = op.startsWith(':') ? v === undefined || v === '' : v === undefined
      if (op.endsWith('?') && unset) throw new Error(`required variable ${braced}: ${arg}`)
      return op.endsWith('-') && unset ? arg : (v ?? '')
    })
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? one(v)
      : Array.isArray(v)
        ? v.map(walk)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v
  return walk(value) as T
}

/** A `KEY=value` file (comments and blank lines skipped), as compose's `--env-file` reads it. */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const text = await readFile(join(ROOT, file), 'utf8')
  const vars: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (m) vars[m[1]!] = m[2]!
  }
  return vars
}

export interface Mount {
  source: string
  target: string
  /** A named volume (declared under the top-level `volumes:`), not a path on the host. */
  named: boolean
  readOnly: boolean
}

/** The mounts of an interpolated service (paths with `${...}` hold colons until interpolated). */
export function mountsOf(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string')
      return {
        source: v.source ?? '',
        target: v.target,
        named: !/^[./~]/.test(v.source ?? '.'),
        readOnly: !!v.read_only,
      }
    const [source = '', target = '', mode = ''] = v.split(':')
    return { source, target, named: !/^[./~]/.test(source), readOnly: mode.split(',').includes('ro') }
  })
}

export interface PortBinding {
  hostIp: string | undefined
  published: number | undefined
  target: number
}

/** Compose's port syntax: `[ip:][published:]target[/proto]` or the long form. */
export function portsOf(service: ComposeService): PortBinding[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p !== 'string')
      return {
        hostIp: p.host_ip,
        published: p.published === undefined ? undefined : Number(p.published),
        target: Number(p.target),
      }
    const parts = p.replace(/\/(tcp|udp)$/, '').split(':')
    const target = Number(parts.pop())
    const published = parts.length > 0 ? Number(parts.pop()) : undefined
    return { hostIp: parts.length > 0 ? parts.join(':') : undefined, published, target }
  })
}

/** A compose health check's command (`CMD` form), as argv. */
export function healthArgv(test: string[] | string | undefined): string[] {
  if (!Array.isArray(test) || test[0] !== 'CMD') throw new Error(`not a CMD health check: ${String(test)}`)
  return test.slice(1)
}
