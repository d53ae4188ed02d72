/**
 * The query-string and path-parameter schemas of the read API (CONTRACT.md §4), written with TypeBox
 * and validated by fastify's Ajv once `queryAjvPlugin` is registered there. A failure answers 422 in
 * FastAPI's shape (CONTRACT.md §1). Bounds are ours (README "Query parameters"): they keep every
 * window a valid PostgreSQL timestamp and every name free of NUL, which PostgreSQL text cannot hold.
 */
import type { FuncKeywordDefinition, Plugin } from 'ajv'
import Type, { type Static } from 'typebox'
import { parseLaxInteger } from './pydantic-inputs.ts'
import { parseInstant } from './time.ts'

/** Ajv format of `from`/`to`: an instant `parseInstant` accepts, or `""`, which means "absent". */
export const INSTANT_FORMAT = 'iso-instant'

/**
 * Ajv keyword, set on a querystring object schema, that reads the query as FastAPI does before
 * the usual validation: a repeated parameter keeps its last value (Starlette), and an integer
 * parameter is parsed as pydantic parses `int` (Ajv's own coercion would take `1e12` and `0x10`).
 */
export const FASTAPI_QUERY = 'fastapiQuery'

/** 100 years: any window past the 30-day retention returns everything (CONTRACT.md §8). */
export const MAX_TRAIL_SECONDS = 3_153_600_000
export const MAX_HEATMAP_HOURS = 8_760
export const MAX_HEATMAP_LIMIT = 100_000
export const MAX_NAME_LENGTH = 256

/** No NUL; the character itself, so that the pattern reads as a Python one would in the 422. */
const NO_NUL = '^[^\u0000]*$'

const characterName = () => Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH, pattern: NO_NUL })

// Integer parameters are required with a default: Ajv fills the default before it checks
// `required`, so a handler always sees a number and the default is written once, here.

/** `GET /trails?seconds=600`. */
export const TrailsQuery = Type.Object(
  { seconds: Type.Integer({ minimum: 0, maximum: MAX_TRAIL_SECONDS, default: 600 }) },
  { [FASTAPI_QUERY]: true },
)
export type TrailsQuery = Static<typeof TrailsQuery>

/** `GET /spawns/heatmap?hours=24&limit=10000`. */
export const HeatmapQuery = Type.Object(
  {
    hours: Type.Integer({ minimum: 1, maximum: MAX_HEATMAP_HOURS, default: 24 }),
    limit: Type.Integer({ minimum: 1, maximum: MAX_HEATMAP_LIMIT, default: 10_000 }),
  },
  { [FASTAPI_QUERY]: true },
)
export type HeatmapQuery = Static<typeof HeatmapQuery>

/** `GET /history?from=&to=&character=`; an empty value means the parameter is absent. */
export const HistoryQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: INSTANT_FORMAT })),
    to: Type.Optional(Type.String({ format: INSTANT_FORMAT })),
    character: Type.Optional(Type.String({ maxLength: MAX_NAME_LENGTH, pattern: NO_NUL })),
  },
  { [FASTAPI_QUERY]: true },
)
export type HistoryQuery = Static<typeof HistoryQuery>

/** `GET /stats/{character_name}`. */
export const StatsParams = Type.Object({ character_name: characterName() })
export type StatsParams = Static<typeof StatsParams>

/** `GET /character-stats/{name}` and `GET /combat-stats/{name}`. */
export const NameParams = Type.Object({ name: characterName() })
export type NameParams = Static<typeof NameParams>

/** An instant query value as the handler uses it: epoch microseconds, or `undefined` when absent. */
export function queryInstant(value: string | undefined): number | undefined {
  return value === undefined || value === '' ? undefined : parseInstant(value)
}

interface PropertySchema {
  type?: unknown
}

/** What a compiled function keyword returns (Ajv's `DataValidateFunction`, not exported by name). */
type KeywordValidate = ReturnType<NonNullable<FuncKeywordDefinition['compile']>>

const fastapiQueryKeyword: FuncKeywordDefinition = {
  keyword: FASTAPI_QUERY,
  schemaType: 'boolean',
  // Without a `type`, Ajv runs this keyword before `properties`, i.e. on the raw strings.
  modifying: true,
  compile(enabled: boolean, parentSchema) {
    const properties = Object.entries((parentSchema.properties ?? {}) as Record<string, PropertySchema>)
    const scalars = enabled ? properties.filter(([, s]) => s.type !== 'array').map(([k]) => k) : []
    const integers = enabled ? properties.filter(([, s]) => s.type === 'integer').map(([k]) => k) : []
    const validate: KeywordValidate = (data: unknown): boolean => {
      validate.errors = undefined
      if (typeof data !== 'object' || data === null) return true
      const query = data as Record<string, unknown>
      for (const key of scalars) {
        const value = query[key]
        if (Array.isArray(value)) query[key] = value.at(-1)
      }
      for (const key of integers) {
        const value = query[key]
        if (typeof value !== 'string') continue
        const n = parseLaxInteger(value)
        if (n === undefined) {
          validate.errors = [
            {
              keyword: 'type',
              instancePath: `/${key}`,
              params: { type: 'integer' },
              message: 'must be integer',
            },
          ]
          return false
        }
        query[key] = n
      }
      return true
    }
    return validate
  },
}

/**
 * Teaches an Ajv instance the vocabulary of these schemas: the `iso-instant` format and the
 * `fastapiQuery` keyword. Give it to fastify as `ajv: { plugins: [queryAjvPlugin] }`.
 */
export const queryAjvPlugin: Plugin<unknown> = (ajv) => {
  ajv.addFormat(INSTANT_FORMAT, {
    type: 'string',
    validate: (text: string) => text === '' || parseInstant(text) !== undefined,
  })
  ajv.addKeyword(fastapiQueryKeyword)
  return ajv
}
