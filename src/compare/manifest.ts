import { pick } from '../util/json-path.ts'
import { ERR, OverlordError } from '../protocol/errors.ts'
import { formatInstant, msToMicros } from '../protocol/time.ts'
import { readJson } from './rules.ts'

/** One polled route, from `compare/endpoints.json`. */
export interface EndpointSpec {
  /** The name rules, waivers, reports and the gate use. */
  name: string
  /** Path and query; `{character}` is filled per live character, `{now-3600s}` with an instant. */
  path: string
  /** `status`: only the status code is compared (e.g. `/api-version`, different by design). */
  compare?: 'full' | 'status'
}

export interface Manifest {
  endpoints: EndpointSpec[]
  /** Where the live characters come from (`{character}` endpoints). */
  characters: { endpoint: string; path: string; field: string }
}

/** Validates a manifest; throws `CMP_ERR_RULES`. */
export function parseManifest(raw: unknown): Manifest {
  const m = raw as Partial<Manifest> | null
  if (m === null || typeof m !== 'object' || !Array.isArray(m.endpoints)) {
    throw new OverlordError(ERR.CMP_RULES, 'manifest needs an endpoints array')
  }
  const names = new Set<string>()
  for (const [i, e] of m.endpoints.entries()) {
    if (typeof e?.name !== 'string' || typeof e.path !== 'string' || !e.path.startsWith('/')) {
      throw new OverlordError(ERR.CMP_RULES, `endpoints[${i}] needs a name and a path starting with /`)
    }
    if (names.has(e.name)) throw new OverlordError(ERR.CMP_RULES, `duplicate endpoint ${e.name}`)
    names.add(e.name)
  }
  const characters = m.characters ?? { endpoint: 'live', path: 'players', field: 'character_name' }
  if (!names.has(characters.endpoint)) {
    throw new OverlordError(ERR.CMP_RULES, `characters.endpoint ${characters.endpoint} is not polled`)
  }
  return { endpoints: m.endpoints, characters }
}

export async function loadManifest(file: string): Promise<Manifest> {
  return parseManifest(await readJson(file))
}

/** Fills `{now-Ns}` placeholders with one instant per sweep, the same for both backends. */
export function expandTime(path: string, nowMs: number): string {
  return path.replace(/\{now(?:-(\d+)s)?\}/g, (_, seconds: string | undefined) =>
    encodeURIComponent(formatInstant(msToMicros(nowMs - Number(seconds ?? 0) * 1000))),
  )
}

/** Expands a `{character}` endpoint into one path per character. */
export function expandCharacters(path: string, characters: readonly string[]): string[] {
  if (!path.includes('{character}')) return [path]
  return characters.map((c) => path.replaceAll('{character}', encodeURIComponent(c)))
}

/** Character names found in a response body (`players[].character_name` by default). */
export function charactersIn(body: unknown, manifest: Manifest): string[] {
  const list = pick(body, manifest.characters.path)
  if (!Array.isArray(list)) return []
  return list
    .map((p) => (p as Record<string, unknown> | null)?.[manifest.characters.field])
    .filter((n): n is string => typeof n === 'string')
}
