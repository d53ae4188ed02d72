import type { FastifyInstance, FastifyReply } from 'fastify'
import { history, latestTelemetry, trails } from '../../db/read-telemetry.ts'
import { characterTotals, totalKills, totalRares } from '../../db/read-totals.ts'
import type { Db } from '../../db/pool.ts'
import { type Clock, msToMicros, parseInstant } from '../../protocol/time.ts'
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

  app.get<{ Querystring: { seconds?: string } }>('/trails', async (req, reply) => {
    const seconds = req.query.seconds === undefined ? 600 : Number(req.query.seconds)
    if (!Number.isFinite(seconds) || seconds < 0)
      return detail(reply, 422, 'seconds must be a non-negative number')
    return { trails: await trails(db, nowMicros(clock) - Math.round(seconds * 1e6)) }
  })

  app.get<{ Querystring: { from?: string; to?: string; character?: string } }>(
    '/history',
    async (req, reply) => {
      const { from, to, character } = req.query
      const fromAt = from === undefined || from === '' ? undefined : parseInstant(from)
      const toAt = to === undefined || to === '' ? undefined : parseInstant(to)
      if (from && fromAt === undefined) return detail(reply, 422, 'from must be an ISO 8601 date-time')
      if (to && toAt === undefined) return detail(reply, 422, 'to must be an ISO 8601 date-time')
      const data = await history(db, {
        from: fromAt,
        to: toAt,
        character: character === '' ? undefined : character,
        limit: maxHistoryRows,
      })
      return { data }
    },
  )

  app.get<{ Params: { character_name: string } }>('/stats/:character_name', async (req, reply) => {
    const name = req.params.character_name
    const [latest, totals] = await Promise.all([latestTelemetry(db, name), characterTotals(db, name)])
    if (latest === undefined) return detail(reply, 404, 'Character not found')
    return { character_name: name, latest_snapshot: latest, ...totals }
  })

  app.get('/total-kills', async () => ({ total: await totalKills(db) }))

  app.get('/total-rares', async () => totalRares(db, nowMicros(clock)))
}
