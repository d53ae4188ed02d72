import { Ajv, type ValidateFunction } from 'ajv'
import type { TSchema } from 'typebox'
import {
  CharacterStatsSchema,
  CombatStatsSchema,
  DungeonMapSchema,
  EnvelopeSchema,
  MAX_TYPE_LENGTH,
  PerCharacterSchema,
  PortalSchema,
  QuestSchema,
  RareSchema,
  SpawnSchema,
  TelemetrySchema,
  VitalsSchema,
} from './frame-schemas.ts'
import {
  type CharacterStatsRow,
  canonicalType,
  type PortalRow,
  type RareRow,
  type SpawnRow,
  type TelemetryRecord,
} from './frames.ts'
import { exceedsDepth, PRESCAN_BYTES, storableText, textExceedsDepth } from './json-bounds.ts'
import { NotStorableNumber, PyFloat, type PyValue, parsePyJson, stringifyPyJson } from './py-json.ts'
import { type Micros, parseInstant } from './time.ts'

/** A parsed frame object, depth-bounded: passed through to browsers and kept in memory, never re-read. */
export type RawFrame = Readonly<Record<string, unknown>>

/** Why a frame was refused; the values are the `/metrics` labels of `bad_by_reason`. */
export type BadFrameReason =
  | 'not_json'
  | 'not_object'
  | 'no_type'
  | 'no_character'
  | 'too_deep'
  | 'bad_field'
  | 'bad_instant'
  | 'out_of_range'

interface Common {
  /** The `type` as sent (`inventory` stays `inventory`): what browsers filter on. */
  wireType: string
  raw: RawFrame
}
interface Named extends Common {
  character: string
}
interface MaybeNamed extends Common {
  character: string | undefined
}

/** A frame decoded for its handling (CONTRACT.md §2): typed values only, nothing left to coerce. */
export type DecodedFrame =
  | (Named & { kind: 'telemetry'; record: TelemetryRecord })
  | (Named & { kind: 'vitals'; vitae: number | null })
  | (Named & { kind: 'character_stats'; row: CharacterStatsRow })
  | (Named & { kind: 'portal'; row: PortalRow })
  | (Named & { kind: 'spawn'; row: SpawnRow })
  | (Named & { kind: 'rare'; row: RareRow })
  | (Named & { kind: 'combat_stats'; sessionId: string | null; stats: PyValue; at: Micros })
  | (Named & { kind: 'quest'; questName: string; countdown: unknown; at: Micros })
  | (Named & { kind: 'equipment_cantrip_state' | 'nearby_objects' })
  | (MaybeNamed & { kind: 'dungeon_map'; landblock: string | null })
  | (MaybeNamed & { kind: 'full_inventory' | 'inventory_delta' | 'chat' | 'share' | 'other' })

export type DecodeResult =
  | { ok: true; frame: DecodedFrame }
  | { ok: false; reason: BadFrameReason; field?: string; character?: string }

const ajv = new Ajv({ allErrors: false, strictTypes: false, allowUnionTypes: true })
const compile = (schema: TSchema): ValidateFunction => ajv.compile(schema)

/** The compiled validator per canonical type; types without one get the envelope's. */
const VALIDATORS = new Map<string, ValidateFunction>([
  ['telemetry', compile(TelemetrySchema)],
  ['vitals', compile(VitalsSchema)],
  ['character_stats', compile(CharacterStatsSchema)],
  ['portal', compile(PortalSchema)],
  ['spawn', compile(SpawnSchema)],
  ['rare', compile(RareSchema)],
  ['combat_stats', compile(CombatStatsSchema)],
  ['quest', compile(QuestSchema)],
  ['equipment_cantrip_state', compile(PerCharacterSchema('equipment_cantrip_state'))],
  ['nearby_objects', compile(PerCharacterSchema('nearby_objects'))],
  ['dungeon_map', compile(DungeonMapSchema)],
])
const validateEnvelope = compile(EnvelopeSchema)

/** A field outside what its column can hold; carries the field for the log. */
class FieldError {
  readonly reason: BadFrameReason
  readonly field: string
  constructor(reason: BadFrameReason, field: string) {
    this.reason = reason
    this.field = field
  }
}

const INT4_MAX = 2 ** 31 - 1

/**
 * Number() reads `0x10`, `0o7`, `0b1`; Python's int() and float() refuse them. A finite Number()
 * with x, o or b second is one of those (checked without a regex: this is telemetry's hot path).
 */
function nonDecimal(s: string): boolean {
  const c = s.charCodeAt(1) | 0x20
  return c === 0x78 || c === 0x6f || c === 0x62
}
/** A Python numeric literal with digits grouped by single underscores (`1_000`, `2_5.0_1`). */
const UNDERSCORED = /^[+-]?(?=\.?\d)(\d(_?\d)*)?(\.(\d(_?\d)*)?)?([eE][+-]?\d(_?\d)*)?$/

/**
 * §1 coercion of a validated numeric field as the legacy's `int(s)`, else `float(s)`, reads a
 * string: `"340.5"` → 340.5, `"1_000"` → 1000; empty, unparsable (`"0x10"`) or non-finite → null.
 */
function num(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'string') {
    const trimmed = value.trim()
    if (trimmed === '') return null
    const n = Number(trimmed)
    if (Number.isFinite(n)) return nonDecimal(trimmed) ? null : n
    if (!trimmed.includes('_') || !UNDERSCORED.test(trimmed)) return null
    const grouped = Number(trimmed.replaceAll('_', ''))
    return Number.isFinite(grouped) ? grouped : null
  }
  if (typeof value === 'boolean') return value ? 1 : 0
  return null
}

/** An integer column: truncated toward zero as Python's `int(float(x))`, refused outside the column. */
function int(frame: RawFrame, field: string, max = INT4_MAX): number | null {
  const n = num(frame[field])
  if (n === null) return null
  const t = Math.trunc(n)
  if (t > max || t < -max - 1) throw new FieldError('out_of_range', field)
  return t === 0 ? 0 : t // no -0 in a column
}
const INT8_MAX = 2n ** 63n - 1n

/**
 * A `bigint` column, read from the frame parsed as Python parses it so that an integer past 2^53
 * keeps its digits (the legacy stores it exactly); a float is truncated as `int(x)` truncates.
 */
function int8(py: Readonly<Record<string, PyValue>>, frame: RawFrame, field: string): number | bigint | null {
  const v = py[field]
  const n = typeof v === 'bigint' ? v : v instanceof PyFloat ? BigInt(Math.trunc(v.value)) : undefined
  if (n === undefined) return int(frame, field, Number.MAX_SAFE_INTEGER)
  if (n > INT8_MAX || n < -INT8_MAX - 1n) throw new FieldError('out_of_range', field)
  return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n
}

/**
 * The frame parsed as the legacy's `json.loads` parses it (CONTRACT.md §8 JSONB payloads):
 * only for the low-rate types whose JSON is stored. Its nesting was bounded already.
 */
function pyFrame(text: string): Readonly<Record<string, PyValue>> {
  try {
    return parsePyJson(text) as Record<string, PyValue>
  } catch (err) {
    // JSON.parse took the text already: what is left is what json.loads refuses too (an int of
    // over 4 300 digits) or what json.dumps cannot write back (a float past the double range).
    throw new FieldError(err instanceof NotStorableNumber ? 'out_of_range' : 'not_json', 'stats')
  }
}

/** Python's truthiness, for `data.get("stats") or {}`. */
const pyFalsy = (v: PyValue | undefined): boolean =>
  v === undefined ||
  v === null ||
  v === false ||
  v === '' ||
  v === 0n ||
  (v instanceof PyFloat && v.value === 0) ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && !(v instanceof PyFloat) && Object.keys(v).length === 0)

const float = (frame: RawFrame, field: string) => num(frame[field])

/** A validated text field: NUL removed (PostgreSQL text cannot hold it), numbers printed. */
function text(value: unknown): string | null {
  if (typeof value === 'string') return storableText(value)
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null
  return null
}

/** The frame's own instant; absent → the receive time, present but not a real instant → refused. */
function instant(frame: RawFrame, receivedAt: Micros): Micros {
  const value = frame.timestamp
  if (value === undefined || value === null) return receivedAt
  const micros = parseInstant(value)
  if (micros === undefined) throw new FieldError('bad_instant', 'timestamp')
  return micros
}

function place(frame: RawFrame, receivedAt: Micros) {
  return {
    timestamp: instant(frame, receivedAt),
    ew: float(frame, 'ew'),
    ns: float(frame, 'ns'),
    z: float(frame, 'z'),
  }
}

/**
 * Decodes one plugin text frame at the edge (CONTRACT.md §1-2): JSON, an object with a `type`,
 * nesting bounded, then the compiled schema of its type and the typed values its handling
 * needs. `receivedAt` is the server's receive time, the fallback for a frame without its own.
 */
export function decodeFrame(text: string, receivedAt: Micros): DecodeResult {
  if (text.length >= PRESCAN_BYTES && textExceedsDepth(text)) return { ok: false, reason: 'too_deep' }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'not_json' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not_object' }
  }
  const raw = value as RawFrame
  const wireType = raw.type
  if (typeof wireType !== 'string' || wireType === '') return { ok: false, reason: 'no_type' }
  if (wireType.length > MAX_TYPE_LENGTH) return { ok: false, reason: 'bad_field', field: 'type' }
  if (exceedsDepth(raw)) return { ok: false, reason: 'too_deep' }
  const kind = canonicalType(wireType)
  const validate = VALIDATORS.get(kind) ?? validateEnvelope
  if (!validate(raw)) {
    const error = validate.errors?.[0]
    const field = error?.instancePath.slice(1) || String(error?.params.missingProperty ?? '')
    return { ok: false, reason: field === 'character_name' ? 'no_character' : 'bad_field', field }
  }
  try {
    return { ok: true, frame: typed(kind, wireType, raw, receivedAt, text) }
  } catch (err) {
    if (!(err instanceof FieldError)) throw err
    return { ok: false, reason: err.reason, field: err.field, character: raw.character_name as string }
  }
}

/** The typed values of a frame its schema accepted. */
function typed(
  kind: string,
  wireType: string,
  raw: RawFrame,
  receivedAt: Micros,
  frameText: string,
): DecodedFrame {
  // Each schema that needs a name required one; the others may carry none.
  const character = raw.character_name as string
  const common = { wireType, raw, character }
  switch (kind) {
    case 'telemetry':
      return {
        ...common,
        kind: 'telemetry',
        record: {
          character_name: character,
          char_tag: text(raw.char_tag),
          session_id: text(raw.session_id),
          timestamp: instant(raw, receivedAt),
          received_at: receivedAt,
          ew: float(raw, 'ew'),
          ns: float(raw, 'ns'),
          z: float(raw, 'z'),
          kills: int(raw, 'kills'),
          kills_per_hour: float(raw, 'kills_per_hour'),
          onlinetime: text(raw.onlinetime),
          deaths: int(raw, 'deaths'),
          total_deaths: int(raw, 'total_deaths'),
          rares_found: int(raw, 'rares_found'),
          prismatic_taper_count: int(raw, 'prismatic_taper_count'),
          vt_state: text(raw.vt_state),
          mem_mb: float(raw, 'mem_mb'),
          cpu_pct: float(raw, 'cpu_pct'),
          mem_handles: int(raw, 'mem_handles'),
          latency_ms: float(raw, 'latency_ms'),
        },
      }
    case 'vitals':
      return { ...common, kind: 'vitals', vitae: float(raw, 'vitae') }
    case 'character_stats': {
      const py = pyFrame(frameText)
      // The legacy stores the whole frame but `type` (CONTRACT.md §2), through json.dumps.
      const statsData = Object.create(null) as Record<string, PyValue>
      for (const key of Object.keys(py)) if (key !== 'type') statsData[key] = py[key] as PyValue
      return {
        ...common,
        kind: 'character_stats',
        row: {
          character_name: character,
          timestamp: instant(raw, receivedAt),
          level: int(raw, 'level'),
          total_xp: int8(py, raw, 'total_xp'),
          unassigned_xp: int8(py, raw, 'unassigned_xp'),
          luminance_earned: int8(py, raw, 'luminance_earned'),
          luminance_total: int8(py, raw, 'luminance_total'),
          deaths: int(raw, 'deaths'),
          stats_json: stringifyPyJson(statsData),
        },
      }
    }
    case 'portal': {
      const at = place(raw, receivedAt)
      if (at.ns === null || at.ew === null) throw new FieldError('bad_field', at.ns === null ? 'ns' : 'ew')
      // `portals.portal_name` is NOT NULL: the legacy's insert fails, so the portal is not stored.
      const portalName = text(raw.portal_name)
      if (portalName === null) throw new FieldError('bad_field', 'portal_name')
      return {
        ...common,
        kind: 'portal',
        row: {
          portal_name: portalName,
          ns: at.ns,
          ew: at.ew,
          z: at.z,
          discovered_at: at.timestamp,
          discovered_by: character,
        },
      }
    }
    case 'spawn':
      return {
        ...common,
        kind: 'spawn',
        row: { character_name: character, mob: text(raw.mob), ...place(raw, receivedAt) },
      }
    case 'rare':
      return {
        ...common,
        kind: 'rare',
        row: { character_name: character, name: text(raw.name), ...place(raw, receivedAt) },
      }
    case 'combat_stats': {
      const stats = pyFrame(frameText).stats
      return {
        ...common,
        kind: 'combat_stats',
        sessionId: text(raw.session_id),
        // The legacy keeps `data.get("stats") or {}` as the session's snapshot.
        stats: pyFalsy(stats) ? (Object.create(null) as Record<string, PyValue>) : (stats as PyValue),
        // `updated_at` is the server's time, as the legacy writes it, not the plugin's clock.
        at: receivedAt,
      }
    }
    case 'quest':
      return {
        ...common,
        kind: 'quest',
        questName: storableText(raw.quest_name as string),
        countdown: raw.countdown,
        // CONTRACT.md §4 /quest-status: the frame's own timestamp, the receive time when it is
        // absent or unparsable (a quest is never refused for its timestamp).
        at: parseInstant(raw.timestamp) ?? receivedAt,
      }
    case 'equipment_cantrip_state':
    case 'nearby_objects':
    case 'full_inventory':
    case 'inventory_delta':
    case 'chat':
      return { ...common, kind }
    case 'dungeon_map':
      return { ...common, kind, landblock: typeof raw.landblock === 'string' ? raw.landblock : null }
    default:
      return { ...common, kind: kind.startsWith('share_') ? 'share' : 'other' }
  }
}
