import type { FastifyInstance } from 'fastify'
import {
  characterStats,
  characterStatsList,
  combatStats,
  portals,
  spawnHeatmap,
} from '../../db/read-state.ts'
import type { Db } from '../../db/pool.ts'
import { HeatmapQuery, NameParams } from '../../protocol/query-schemas.ts'
import { type Clock, formatInstant, msToMicros } from '../../protocol/time.ts'
import type { LiveState } from '../live-state.ts'
import { detail } from './read-api.ts'

export interface StateApiOptions {
  db: Db
  clock: Clock
  live: LiveState
}

const byName = (a: { character_name: string }, b: { character_name: string }) =>
  a.character_name < b.character_name ? -1 : a.character_name > b.character_name ? 1 : 0

/** The remaining read routes of CONTRACT.md §4: character and combat stats, quests, portals, spawns, peers. */
export function registerStateApi(app: FastifyInstance, o: StateApiOptions): void {
  const { db, clock, live } = o

  app.get('/character-stats/list', async () => ({ characters: await characterStatsList(db) }))

  app.get<{ Params: NameParams }>(
    '/character-stats/:name',
    { schema: { params: NameParams } },
    async (req, reply) => {
      const stats = await characterStats(db, req.params.name)
      return stats ?? detail(reply, 404, 'Character stats not found')
    },
  )

  app.get<{ Params: NameParams }>('/combat-stats/:name', { schema: { params: NameParams } }, async (req) =>
    combatStats(db, req.params.name, live.sessionOf(req.params.name)),
  )

  app.get('/quest-status', async () => {
    const quest_data: Record<string, unknown>[] = []
    for (const [character_name, quests] of live.quests) {
      for (const [quest_name, q] of quests.byName) {
        quest_data.push({
          character_name,
          quest_name,
          countdown: q.countdown,
          last_updated: formatInstant(q.last_updated),
        })
      }
    }
    quest_data.sort(
      (a, b) => byName(a as never, b as never) || String(a.quest_name).localeCompare(String(b.quest_name)),
    )
    return { quest_data }
  })

  app.get('/portals', async () => ({ portals: await portals(db) }))

  app.get<{ Querystring: HeatmapQuery }>(
    '/spawns/heatmap',
    { schema: { querystring: HeatmapQuery } },
    async (req) => {
      const { hours, limit } = req.query
      const spawn_points = await spawnHeatmap(db, msToMicros(clock.now() - hours * 3_600_000), limit)
      return { spawn_points, hours_window: hours, total_points: spawn_points.length }
    },
  )

  app.get('/vital-sharing/peers', async () => {
    const peers = [...live.sharePeers].map(([character_name, p]) => ({
      character_name,
      last_seen: formatInstant(msToMicros(p.last_seen)),
    }))
    return { peers: peers.sort(byName) }
  })
}
