import { Prng } from './prng.ts'

/** A simulated fleet: what to make and from which seed. */
export interface FleetOptions {
  seed: number
  characters: number
  /** Simulated epoch ms at which the fleet starts. */
  startMs: number
  /** Session length range in ms before a character logs out (default 90-240 s). */
  sessionMs?: readonly [number, number]
  /** Offline gap range between sessions (default 5-20 s). */
  offlineMs?: readonly [number, number]
}

/** What a plugin does at an instant of simulated time. */
export type FleetEvent =
  | { kind: 'connect'; at: number; character: string }
  | { kind: 'frame'; at: number; character: string; type: string; data: string }
  | { kind: 'disconnect'; at: number; character: string }

const NAMES = [
  'Larsson',
  'Aerlinthe Hunter',
  'Brim Ironfist',
  'Xarabydun',
  "Ka'hiri",
  'Mosswart Mage',
  'Shoushi Tinker',
  'Yaraq Archer',
  'Holtburg Guard',
  'Rithwic Scout',
]
const VT_STATES = ['Combat', 'Navigating', 'Looting', 'Buffing', 'Idle']
const MOBS = ['Drudge Skulker', 'Mosswart Worshipper', 'Olthoi Soldier', 'Tusker Guard', 'Banderling Raider']
const RARES = [
  'Ruby Pearl of Wisdom',
  'Gelidite Shard',
  'Pearl of Blood Drinking',
  'Infinite Ivory Ammunition',
]
const QUESTS = ['Stipend', 'Olthoi Queen', 'Colo Arena', 'Lugian Kill Task']
/** Shared between characters so portal de-duplication (CONTRACT.md §2) is exercised. */
const PORTALS = [
  { portal_name: 'Portal to Holtburg', ns: 42.1, ew: 33.6, z: 0.01 },
  { portal_name: 'Portal to Shoushi', ns: -33.52, ew: 72.84, z: 0.05 },
  { portal_name: 'Portal to Yaraq', ns: -21.5, ew: -1.8, z: 0.0 },
  { portal_name: 'Ancient Portal', ns: 12.34, ew: -56.78, z: 12.5 },
]
const CHAT_COLORS = [3, 5, 12, 17]
const ELEMENTS = ['slash', 'pierce', 'bludgeon', 'fire', 'cold', 'acid', 'lightning']

type Stream =
  | 'telemetry'
  | 'vitals'
  | 'nearby_objects'
  | 'spawn'
  | 'combat_stats'
  | 'character_stats'
  | 'chat'
  | 'quest'
  | 'portal'
  | 'rare'
  | 'inventory_burst'
  | 'equipment_cantrip_state'
  | 'share_vitals'
  | 'dungeon_map'
  | 'future_event'
  | 'vitae_recover'
  | 'logout'
  | 'login'

/** Periodic streams: fixed period; the others are drawn from [min, max] each time. */
const PERIOD: Partial<Record<Stream, number>> = {
  telemetry: 2_000,
  vitals: 3_000,
  nearby_objects: 5_000,
  combat_stats: 15_000,
  character_stats: 30_000,
  equipment_cantrip_state: 60_000,
}
const RANDOM_GAP: Partial<Record<Stream, readonly [number, number]>> = {
  spawn: [1_500, 6_000],
  chat: [8_000, 30_000],
  quest: [15_000, 45_000],
  portal: [15_000, 50_000],
  rare: [30_000, 90_000],
  inventory_burst: [25_000, 70_000],
  share_vitals: [5_000, 15_000],
  dungeon_map: [45_000, 120_000],
  future_event: [40_000, 150_000],
}

interface Character {
  name: string
  tag: string
  rng: Prng
  /** The game client's clock drift (CONTRACT.md §6: up to ~90 s). */
  skewMs: number
  online: boolean
  session: string
  sessionStart: number
  ew: number
  ns: number
  z: number
  kills: number
  deaths: number
  totalDeaths: number
  raresFound: number
  tapers: number
  vitae: number
  health: number
  level: number
  totalXp: number
  itemIds: number[]
  nextItemId: number
  combat: Record<string, Record<string, number>>
  due: Map<Stream, number>
}

/**
 * A deterministic fleet of plugin-shaped characters producing every event type of CONTRACT.md §2:
 * telemetry with the string-typed numbers, sessions (logout, new `session_id`, kills restarting),
 * vitae transitions on deaths, inventory bursts, rares, shared portals, share relays, dungeon maps
 * and a type the tracker does not know. Pure: it only turns simulated time into events.
 */
export class FleetModel {
  readonly characters: readonly string[]
  readonly #chars: Character[]
  readonly #o: FleetOptions
  #now: number

  constructor(options: FleetOptions) {
    this.#o = options
    this.#now = options.startMs
    const root = new Prng(options.seed)
    this.#chars = []
    for (let i = 0; i < options.characters; i++) {
      const base = NAMES[i % NAMES.length] as string
      const name = i < NAMES.length ? base : `${base} ${Math.floor(i / NAMES.length) + 1}`
      const rng = new Prng(root.int(1, 2 ** 31))
      const c: Character = {
        name,
        tag: rng.pick(['MM', 'OVL', 'HNT']),
        rng,
        skewMs: rng.int(-90_000, 90_000),
        online: false,
        session: '',
        sessionStart: 0,
        ew: rng.float(-80, 80),
        ns: rng.float(-80, 80),
        z: rng.float(0, 50),
        kills: 0,
        deaths: 0,
        totalDeaths: rng.int(0, 40),
        raresFound: rng.int(0, 10),
        tapers: rng.int(0, 500),
        vitae: 0,
        health: 400,
        level: rng.int(40, 275),
        totalXp: rng.int(1e6, 1e10),
        itemIds: [],
        nextItemId: 0x50000000 + i * 0x10000,
        combat: {},
        due: new Map([['login', options.startMs + rng.int(0, 1_500)]]),
      }
      this.#chars.push(c)
    }
    this.characters = this.#chars.map((c) => c.name)
  }

  /** Every event due up to and including `untilMs`, in time order (ties by character order). */
  advance(untilMs: number): FleetEvent[] {
    const out: FleetEvent[] = []
    for (;;) {
      let best: { c: Character; stream: Stream; at: number } | undefined
      for (const c of this.#chars) {
        for (const [stream, at] of c.due) if (best === undefined || at < best.at) best = { c, stream, at }
      }
      if (best === undefined || best.at > untilMs) break
      this.#now = best.at
      this.#fire(best.c, best.stream, best.at, out)
    }
    this.#now = untilMs
    return out
  }

  #fire(c: Character, stream: Stream, at: number, out: FleetEvent[]): void {
    c.due.delete(stream)
    const rng = c.rng
    if (stream === 'login') {
      this.#login(c, at, out)
      return
    }
    if (stream === 'logout') {
      c.online = false
      c.due.clear()
      out.push({ kind: 'disconnect', at, character: c.name })
      const [lo, hi] = this.#o.offlineMs ?? [5_000, 20_000]
      c.due.set('login', at + rng.int(lo, hi))
      return
    }
    if (stream === 'vitae_recover') {
      c.vitae = 0
      return
    }
    if (stream === 'inventory_burst') {
      const n = rng.int(5, 20)
      for (let i = 0; i < n; i++) this.#emit(c, at, this.#inventoryDelta(c), out)
    } else {
      this.#emit(c, at, this.#frame(c, stream, at), out)
    }
    const period = PERIOD[stream]
    const gap = RANDOM_GAP[stream]
    if (period !== undefined) c.due.set(stream, at + period)
    else if (gap !== undefined) c.due.set(stream, at + rng.int(gap[0], gap[1]))
  }

  #login(c: Character, at: number, out: FleetEvent[]): void {
    const rng = c.rng
    c.online = true
    c.session = `${c.name.replaceAll(' ', '_')}-${rng.hex(8)}`
    c.sessionStart = at
    c.kills = 0
    c.deaths = 0
    if (c.vitae > 0) c.due.set('vitae_recover', at + rng.int(5_000, 20_000))
    out.push({ kind: 'connect', at, character: c.name })
    c.itemIds = Array.from({ length: rng.int(30, 80) }, () => c.nextItemId++)
    this.#emit(c, at + 200, this.#fullInventory(c, at), out)
    this.#emit(c, at + 300, this.#frame(c, 'character_stats', at + 300), out)
    for (const [stream, period] of Object.entries(PERIOD) as [Stream, number][]) {
      c.due.set(stream, at + rng.int(400, Math.min(period, 3_000)))
    }
    for (const [stream, [lo, hi]] of Object.entries(RANDOM_GAP) as [Stream, readonly [number, number]][]) {
      c.due.set(stream, at + rng.int(lo, hi))
    }
    const [slo, shi] = this.#o.sessionMs ?? [90_000, 240_000]
    c.due.set('logout', at + rng.int(slo, shi))
  }

  #emit(c: Character, at: number, frame: Record<string, unknown>, out: FleetEvent[]): void {
    out.push({ kind: 'frame', at, character: c.name, type: String(frame.type), data: JSON.stringify(frame) })
  }

  #base(c: Character, type: string, at: number): Record<string, unknown> {
    return { type, character_name: c.name, timestamp: new Date(at + c.skewMs).toISOString() }
  }

  #frame(c: Character, stream: Stream, at: number): Record<string, unknown> {
    const rng = c.rng
    switch (stream) {
      case 'telemetry': {
        c.ew = Math.round((c.ew + rng.float(-0.3, 0.3)) * 100) / 100
        c.ns = Math.round((c.ns + rng.float(-0.3, 0.3)) * 100) / 100
        c.kills += rng.int(0, 3)
        const hours = Math.max((at - c.sessionStart) / 3_600_000, 1 / 60)
        const online = Math.floor((at - c.sessionStart) / 1000)
        return {
          ...this.#base(c, 'telemetry', at),
          char_tag: c.tag,
          session_id: c.session,
          ew: c.ew,
          ns: c.ns,
          z: c.z,
          kills: c.kills,
          // CONTRACT.md §1: the plugin sends these four as strings.
          kills_per_hour: (c.kills / hours).toFixed(1),
          onlinetime: `${String(Math.floor(online / 3600)).padStart(2, '0')}:${String(Math.floor(online / 60) % 60).padStart(2, '0')}:${String(online % 60).padStart(2, '0')}`,
          deaths: String(c.deaths),
          total_deaths: String(c.totalDeaths),
          rares_found: c.raresFound,
          prismatic_taper_count: String(c.tapers),
          vt_state: rng.chance(0.15) ? 'Idle' : rng.pick(VT_STATES),
          mem_mb: rng.float(300, 900, 1),
          cpu_pct: rng.float(1, 40, 1),
          mem_handles: rng.int(900, 3000),
          latency_ms: rng.float(20, 250, 1),
        }
      }
      case 'vitals': {
        if (c.vitae === 0 && rng.chance(1 / 30)) {
          c.deaths += 1
          c.totalDeaths += 1
          c.vitae = rng.pick([5, 10, 15])
          c.health = 0
          c.due.set('vitae_recover', at + rng.int(20_000, 45_000))
        } else {
          c.health = Math.min(400, c.health + rng.int(0, 120))
        }
        return {
          ...this.#base(c, 'vitals', at),
          health_current: c.health,
          health_max: 400,
          health_percentage: Math.round((c.health / 400) * 1000) / 10,
          stamina_current: rng.int(100, 300),
          stamina_max: 300,
          stamina_percentage: rng.float(30, 100, 1),
          mana_current: rng.int(50, 250),
          mana_max: 250,
          mana_percentage: rng.float(20, 100, 1),
          vitae: c.vitae,
        }
      }
      case 'nearby_objects':
        return {
          ...this.#base(c, 'nearby_objects', at),
          objects: Array.from({ length: rng.int(0, 6) }, () => ({
            name: rng.pick(MOBS),
            ew: c.ew + rng.float(-0.5, 0.5),
            ns: c.ns + rng.float(-0.5, 0.5),
          })),
        }
      case 'spawn':
        return {
          ...this.#base(c, 'spawn', at),
          mob: rng.pick(MOBS),
          ew: Math.round((c.ew + rng.float(-1, 1)) * 10) / 10,
          ns: Math.round((c.ns + rng.float(-1, 1)) * 10) / 10,
          z: c.z,
        }
      case 'combat_stats': {
        const mob = rng.pick(MOBS)
        const element = rng.pick(ELEMENTS)
        const bucket = c.combat[mob] ?? {}
        c.combat[mob] = bucket
        bucket[element] = (bucket[element] ?? 0) + rng.int(50, 2000)
        bucket.hits = (bucket.hits ?? 0) + rng.int(1, 20)
        return {
          ...this.#base(c, 'combat_stats', at),
          session_id: c.session,
          stats: { monsters: structuredClone(c.combat), total_damage: sumLeaves(c.combat) },
        }
      }
      case 'character_stats':
        c.totalXp += rng.int(1e4, 1e6)
        return {
          ...this.#base(c, 'character_stats', at),
          level: c.level,
          total_xp: c.totalXp,
          unassigned_xp: rng.int(0, 1e6),
          luminance_earned: rng.int(0, 1e6),
          luminance_total: 1_500_000,
          deaths: c.totalDeaths,
          attributes: { strength: { base: 100, creation: 100 }, endurance: { base: 90, creation: 90 } },
          vitals: { health: { base: 400 }, stamina: { base: 300 }, mana: { base: 250 } },
          skills: {
            war_magic: { base: 400, training: 'Specialized' },
            melee_defense: { base: 350, training: 'Trained' },
          },
          allegiance: { name: 'Overlords', rank: rng.int(1, 10) },
          properties: { 181: rng.int(0, 5) },
          titles: ['Mosswart Slayer'],
        }
      case 'chat':
        return {
          ...this.#base(c, 'chat', at),
          text: `[Allegiance] ${c.name} says, "${rng.pick(['need buffs', 'rare!', 'portal?', 'afk 5'])}"`,
          color: rng.pick(CHAT_COLORS),
          channel: 'allegiance',
        }
      case 'quest':
        return {
          ...this.#base(c, 'quest', at),
          quest_name: rng.pick(QUESTS),
          countdown: `${rng.int(0, 20)}h ${rng.int(0, 59)}m`,
        }
      case 'portal':
        return { ...this.#base(c, 'portal', at), ...rng.pick(PORTALS) }
      case 'rare':
        c.raresFound += 1
        return { ...this.#base(c, 'rare', at), name: rng.pick(RARES), ew: c.ew, ns: c.ns, z: c.z }
      case 'equipment_cantrip_state':
        return {
          ...this.#base(c, 'equipment_cantrip_state', at),
          items: [{ name: 'Legendary Strength', active: rng.chance(0.9) }],
        }
      case 'share_vitals':
        return {
          ...this.#base(c, 'share_vitals', at),
          health_percentage: Math.round((c.health / 400) * 100),
          ew: c.ew,
          ns: c.ns,
        }
      case 'dungeon_map':
        return {
          ...this.#base(c, 'dungeon_map', at),
          landblock: `0x${rng.hex(4).toUpperCase()}`,
          tiles: Array.from({ length: 4 }, (_, i) => ({ x: i, y: rng.int(0, 3), kind: 'corridor' })),
        }
      default:
        // A type the tracker does not know yet: counted and broadcast, never persisted (CONTRACT.md §2).
        return { ...this.#base(c, 'future_event', at), payload: { n: rng.int(0, 9) } }
    }
  }

  #fullInventory(c: Character, at: number): Record<string, unknown> {
    const items = c.itemIds.map((id) => item(c.rng, id))
    return { ...this.#base(c, 'full_inventory', at), item_count: items.length, items }
  }

  #inventoryDelta(c: Character): Record<string, unknown> {
    const rng = c.rng
    const at = this.#now
    const action = c.itemIds.length === 0 ? 'add' : rng.pick(['add', 'update', 'remove'] as const)
    if (action === 'add') {
      const id = c.nextItemId++
      c.itemIds.push(id)
      return { ...this.#base(c, 'inventory_delta', at), action, item: item(rng, id) }
    }
    const id = rng.pick(c.itemIds)
    if (action === 'remove') {
      c.itemIds = c.itemIds.filter((x) => x !== id)
      return { ...this.#base(c, 'inventory_delta', at), action, item_id: id }
    }
    return { ...this.#base(c, 'inventory_delta', at), action, item: item(rng, id) }
  }
}

function item(rng: Prng, id: number): Record<string, unknown> {
  return {
    id,
    name: rng.pick(['Pyreal Mote', 'Major Strength Aetheria', 'Shadow Wings', 'Mana Stone']),
    value: rng.int(1, 50_000),
    burden: rng.int(1, 500),
    container_id: 0x50000001,
  }
}

function sumLeaves(o: Record<string, Record<string, number>>): number {
  let total = 0
  for (const bucket of Object.values(o)) for (const v of Object.values(bucket)) total += v
  return total
}
