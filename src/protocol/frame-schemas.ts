import Type, { type TSchema } from 'typebox'

/**
 * One JSON Schema per plugin event type of CONTRACT.md §2, written with TypeBox and compiled
 * once by Ajv (decode-frame.ts). They state what the tracker can store and serve: the field
 * types the plugin really sends (numbers that may arrive as strings, §1), lengths, and which
 * fields a type cannot do without. Extra fields pass: the protocol grows additively.
 */

/** Longest `type` accepted; frame types are counter keys and subscribe filters. */
export const MAX_TYPE_LENGTH = 128
/** Longest character name (chosen: game names are at most 32 characters). */
export const MAX_NAME_LENGTH = 128
/** Longest identifier-like text (session, quest, landblock). */
export const MAX_ID_LENGTH = 256
/** Longest stored free text (tag, state, mob, item and portal names). */
export const MAX_TEXT_LENGTH = 1024
/** Longest string a numeric field may carry (`"340.5"`); longer is not a number the plugin sends. */
export const MAX_NUMERIC_TEXT_LENGTH = 64

/** A character name: a non-empty string without NUL (it keys rows, maps and plugin sockets). */
export const CharacterName = Type.String({
  minLength: 1,
  maxLength: MAX_NAME_LENGTH,
  pattern: '^[^\\u0000]*$',
})

/** Text column: a string (NUL removed when stored) or a number (printed), or null. */
const Text = (maxLength = MAX_TEXT_LENGTH) =>
  Type.Optional(Type.Unsafe<string | number | null>({ type: ['string', 'number', 'null'], maxLength }))

/** Numeric column (§1 coercion): a number, a numeric string, a boolean, or null. */
const Numeric = () =>
  Type.Optional(
    Type.Unsafe<number | string | boolean | null>({
      type: ['number', 'string', 'boolean', 'null'],
      maxLength: MAX_NUMERIC_TEXT_LENGTH,
    }),
  )

/** An ISO 8601 instant; whether it is a real one is decided by parseInstant. */
const Instant = () => Type.Optional(Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: 64 }))

/** Any JSON value (already depth-bounded by the decoder). */
const Json = () => Type.Optional(Type.Unknown())

const Frame = <P extends Record<string, TSchema>>(type: string, properties: P, required = true) =>
  Type.Object(
    {
      type: Type.Literal(type),
      character_name: required ? CharacterName : Type.Optional(CharacterName),
      ...properties,
    },
    { additionalProperties: true },
  )

const Place = { ew: Numeric(), ns: Numeric(), z: Numeric() }

export const TelemetrySchema = Frame('telemetry', {
  timestamp: Instant(),
  char_tag: Text(),
  session_id: Text(MAX_ID_LENGTH),
  ...Place,
  kills: Numeric(),
  kills_per_hour: Numeric(),
  onlinetime: Text(),
  deaths: Numeric(),
  total_deaths: Numeric(),
  rares_found: Numeric(),
  prismatic_taper_count: Numeric(),
  vt_state: Text(),
  mem_mb: Numeric(),
  cpu_pct: Numeric(),
  mem_handles: Numeric(),
  latency_ms: Numeric(),
})

export const VitalsSchema = Frame('vitals', { vitae: Numeric() })

export const CharacterStatsSchema = Frame('character_stats', {
  timestamp: Instant(),
  level: Numeric(),
  total_xp: Numeric(),
  unassigned_xp: Numeric(),
  luminance_earned: Numeric(),
  luminance_total: Numeric(),
  deaths: Numeric(),
})

export const PortalSchema = Frame('portal', {
  timestamp: Instant(),
  portal_name: Text(),
  ...Place,
})

export const SpawnSchema = Frame('spawn', { timestamp: Instant(), mob: Text(), ...Place })

export const RareSchema = Frame('rare', { timestamp: Instant(), name: Text(), ...Place })

export const CombatStatsSchema = Frame('combat_stats', {
  timestamp: Instant(),
  session_id: Text(MAX_ID_LENGTH),
  stats: Json(),
})

export const QuestSchema = Frame('quest', {
  timestamp: Type.Optional(Type.Unknown()),
  quest_name: Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }),
  countdown: Json(),
})

/** Memory-only frames kept per character (radar, cantrips). */
export const PerCharacterSchema = (type: string) => Frame(type, {})

export const DungeonMapSchema = Frame(
  'dungeon_map',
  {
    landblock: Type.Optional(
      Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: MAX_ID_LENGTH }),
    ),
  },
  false,
)

/**
 * Everything else (chat, inventory, share_*, types we do not know): only the envelope. A
 * `character_name`, when present, must still be a name, since it registers the socket.
 */
export const EnvelopeSchema = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH }),
    character_name: Type.Optional(CharacterName),
  },
  { additionalProperties: true },
)
