import type { FastifyRequest } from 'fastify'
import { datetimeParseError } from '../../protocol/pydantic-inputs.ts'
import { INSTANT_FORMAT } from '../../protocol/query-schemas.ts'

/** One entry of FastAPI's 422 `detail` list, as pydantic v2 words it (CONTRACT.md §1). */
export interface PydanticErrorDetail {
  type: string
  loc: string[]
  msg: string
  input: unknown
  ctx?: Record<string, unknown>
}

/** The parts of an Ajv error that fastify passes on in `error.validation`. */
interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  message?: string
}

/** FastAPI's first `loc` element for each part of the request fastify validates. */
const LOC_ROOT = new Map([
  ['querystring', 'query'],
  ['params', 'path'],
  ['headers', 'header'],
  ['body', 'body'],
])

type Described = Pick<PydanticErrorDetail, 'type' | 'msg' | 'ctx'>

const TYPE_ERRORS = new Map<string, Described>([
  [
    'integer',
    { type: 'int_parsing', msg: 'Input should be a valid integer, unable to parse string as an integer' },
  ],
  [
    'number',
    { type: 'float_parsing', msg: 'Input should be a valid number, unable to parse string as a number' },
  ],
  ['string', { type: 'string_type', msg: 'Input should be a valid string' }],
  ['boolean', { type: 'bool_parsing', msg: 'Input should be a valid boolean, unable to interpret input' }],
])

const plural = (n: unknown) => (n === 1 ? '' : 's')

/** pydantic's type, message and context for one Ajv error; `input` is the value as received. */
function describe(error: AjvError, input: unknown): Described {
  const { limit, type, pattern, format } = error.params
  switch (error.keyword) {
    case 'type':
      return TYPE_ERRORS.get(String(type)) ?? valueError(error)
    case 'minimum':
      return {
        type: 'greater_than_equal',
        msg: `Input should be greater than or equal to ${limit}`,
        ctx: { ge: limit },
      }
    case 'maximum':
      return {
        type: 'less_than_equal',
        msg: `Input should be less than or equal to ${limit}`,
        ctx: { le: limit },
      }
    case 'exclusiveMinimum':
      return { type: 'greater_than', msg: `Input should be greater than ${limit}`, ctx: { gt: limit } }
    case 'exclusiveMaximum':
      return { type: 'less_than', msg: `Input should be less than ${limit}`, ctx: { lt: limit } }
    case 'minLength':
      return {
        type: 'string_too_short',
        msg: `String should have at least ${limit} character${plural(limit)}`,
        ctx: { min_length: limit },
      }
    case 'maxLength':
      return {
        type: 'string_too_long',
        msg: `String should have at most ${limit} character${plural(limit)}`,
        ctx: { max_length: limit },
      }
    case 'pattern':
      return {
        type: 'string_pattern_mismatch',
        msg: `String should match pattern '${pattern}'`,
        ctx: { pattern },
      }
    case 'format': {
      if (format !== INSTANT_FORMAT) return valueError(error)
      const reason = datetimeParseError(String(input))
      return {
        type: 'datetime_from_date_parsing',
        msg: `Input should be a valid datetime or date, ${reason}`,
        ctx: { error: reason },
      }
    }
    case 'required':
      return { type: 'missing', msg: 'Field required' }
    case 'additionalProperties':
      return { type: 'extra_forbidden', msg: 'Extra inputs are not permitted' }
    default:
      return valueError(error)
  }
}

function valueError(error: AjvError): Described {
  const reason = error.message ?? `failed ${error.keyword}`
  return { type: 'value_error', msg: `Value error, ${reason}`, ctx: { error: reason } }
}

const unescapePointer = (segment: string) => segment.replaceAll('~1', '/').replaceAll('~0', '~')

/**
 * The value an error is about, as the client sent it. Ajv coerces the query in place ("16" becomes
 * 16), so query values are read again from the URL; as Starlette does, the last repeat wins.
 */
function inputAt(req: FastifyRequest, part: string, path: string[]): unknown {
  if (part === 'querystring' && path.length === 1) {
    const queryAt = req.url.indexOf('?')
    const raw = new URLSearchParams(queryAt === -1 ? '' : req.url.slice(queryAt + 1)).getAll(path[0]!).at(-1)
    if (raw !== undefined) return raw
  }
  let value: unknown = (req as unknown as Record<string, unknown>)[part]
  for (const segment of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, segment)) return null
    value = (value as Record<string, unknown>)[segment]
  }
  return value
}

/**
 * FastAPI's 422 `detail` list for a fastify validation error (one carrying `validation` and
 * `validationContext`), or `undefined` for any other error.
 */
export function validationDetail(error: unknown, req: FastifyRequest): PydanticErrorDetail[] | undefined {
  const { validation, validationContext } = error as { validation?: unknown; validationContext?: string }
  if (!Array.isArray(validation)) return undefined
  const part = validationContext ?? 'body'
  return (validation as AjvError[]).map((e) => {
    const path = e.instancePath.split('/').slice(1).map(unescapePointer)
    const missing = e.keyword === 'required' ? String(e.params.missingProperty) : undefined
    const loc = [LOC_ROOT.get(part) ?? part, ...path, ...(missing === undefined ? [] : [missing])]
    const input = missing === undefined ? inputAt(req, part, path) : null
    const { type, msg, ctx } = describe(e, input)
    return ctx === undefined ? { type, loc, msg, input } : { type, loc, msg, input, ctx }
  })
}
