import type { FastifyInstance, FastifyReply } from 'fastify'
import { history, latestTelemetry, trails } from '../../db/read-telemetry.ts'
import { characterTotals, totalKills, totalRares } from '../../db/read-totals.ts'
import type { Db } from '../../db/pool.ts'
import { HistoryQuery, queryInstant, StatsParams, TrailsQuery } from '../../protocol/query-schemas.ts'
import { type Clock, msToMicros } from '../../protocol/time.ts'
import type { LiveCache } from '../live-cache.ts'

export interface ReadApiOptions {
  db: Db
  clock: Clock
  liveCache: LiveCache
  maxHistoryRows?: number
}

/** FastAPI's error shape (CONTRACT.md §1). */
export function detail(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ detail: message })
}

const nowMicros = (clock: Clock) => msToMicros(clock.now())

/** The telemetry read routes of CONTRACT.md §4. */
export function registerReadApi(app: FastifyInstance, o: ReadApiOptions): void {
  const { db, clock, liveCache } = o
  const maxHistoryRows = o.maxHistoryRows ?? 10_000

  app.get('/live', (_req, reply) => {
    reply.type('application/json').send(liveCache.body)
  })

  app.get<{ Querystring: TrailsQuery }>('/trails', { schema: { querystring: TrailsQuery } }, async (req) => ({
    trails: await trails(db, nowMicros(clock) - req.query.seconds * 1_000_000),
  }))

  app.get<{ Querystring: HistoryQuery }>(
    '/history',
    { schema: { querystring: HistoryQuery } },
    async (req) => {
      const { from, to, character } = req.query
      const data = await history(db, {
        from: queryInstant(from),
        to: queryInstant(to),
        character: character === '' ? undefined : character,
        limit: maxHistoryRows,
      })
      return { data }
    },
  )

  app.get<{ Params: StatsParams }>(
    '/stats/:character_name',
    { schema: { params: StatsParams } },
    async (req, reply) => {
      const name = req.params.character_name
      const [latest, totals] = await Promise.all([latestTelemetry(db, name), characterTotals(db, name)])
      if (latest === undefined) return detail(reply, 404, 'Character not found')
      return { character_name: name, latest_snapshot: latest, ...totals }
    },
  )

  app.get('/total-kills', async () => ({ total: await totalKills(db) }))

  app.get('/total-rares', async () => totalRares(db, nowMicros(clock)))
}
