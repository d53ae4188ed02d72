import replyFrom, { type FastifyReplyFromHooks } from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { bump, counterRecord } from '../metrics.ts'
import { detail } from './read-api.ts'

/** Long enough for the inventory service's slowest search, short enough to free a stuck dashboard. */
export const INVENTORY_TIMEOUT_MS = 10_000

export interface InventoryProxyOptions {
  /** `INVENTORY_SERVICE_URL`; undefined = every route answers 503 as the primary does. */
  baseUrl: string | undefined
  /** Per upstream request: connect, response headers, and each gap in the body. */
  timeoutMs?: number
  /** Writes (non-safe methods through `/inv/*`) reach the service only when true (CONTRACT.md §10). */
  writesEnabled: boolean
  logger: Logger
}

/** Counters served under `inventory_proxy` at `/metrics.json` (and flattened at `/metrics`). */
export interface InventoryProxyStats {
  /** Requests sent to the inventory service. */
  requests: number
  /** Upstream answers relayed (any status). */
  relayed: number
  /** Requests the service never answered in time or at all, by reason (`unavailable`, `timeout`). */
  failures_by_reason: Record<string, number>
  /** Answered 503 because no `INVENTORY_SERVICE_URL` is configured. */
  not_configured: number
  /** Writes a shadow refused instead of sending to the live inventory service. */
  writes_refused: number
}

export function newInventoryProxyStats(): InventoryProxyStats {
  return {
    requests: 0,
    relayed: 0,
    failures_by_reason: counterRecord(),
    not_configured: 0,
    writes_refused: 0,
  }
}

/** RFC 9110 §9.2.1 safe methods: they cannot change the inventory service's state. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * The dashboard's credentials stay here: the tracker has already authenticated the user, and the
 * inventory service (internal, unauthenticated in the legacy setup) has no use for the session.
 */
const WITHHELD_REQUEST_HEADERS = ['cookie', 'authorization']

/**
 * `GET /inventory/{character}` and `/inv/*`, reverse-proxied to the inventory service
 * (CONTRACT.md §4): `/inventory/X?q` → `{URL}/inventory/X?q`, `/inv/a/b?q` → `{URL}/a/b?q`.
 * Upstream status, headers and body pass through as-is (streamed); no answer is 502, too slow 504.
 */
export async function registerInventoryProxy(
  app: FastifyInstance,
  options: InventoryProxyOptions,
  stats: InventoryProxyStats,
): Promise<void> {
  const log = options.logger.child({ component: 'inventory-proxy' })
  const timeoutMs = options.timeoutMs ?? INVENTORY_TIMEOUT_MS
  // String concatenation, as the legacy builds its URLs: a base path (`http://inv/api`) is kept.
  const base = options.baseUrl?.replace(/\/+$/, '')

  const forward = (req: FastifyRequest, reply: FastifyReply, path: string): FastifyReply | undefined => {
    if (base === undefined) {
      stats.not_configured += 1
      return detail(reply, 503, 'Inventory service not configured')
    }
    if (!READS.has(req.method) && !options.writesEnabled) {
      stats.writes_refused += 1
      log.info({ method: req.method, path }, 'shadow: inventory write not sent')
      return detail(reply, 503, 'Inventory writes are disabled on this shadow tracker')
    }
    try {
      // The query string is taken from the raw request URL, byte for byte.
      reply.from(`${base}${path}`, proxied(path))
    } catch (err) {
      // reply-from refuses dot segments (`/inv/../x`): they would climb out of the service's base path.
      if ((err as { statusCode?: number }).statusCode !== 400) throw err
      return detail(reply, 400, 'Invalid inventory path')
    }
    stats.requests += 1
    return reply
  }

  const proxied = (path: string): FastifyReplyFromHooks => ({
    timeout: timeoutMs,
    // A write must never be repeated, and an upstream 503 is an answer to pass on, not to retry.
    retryDelay: () => null,
    rewriteRequestHeaders: (_req, headers) => {
      const out = { ...headers }
      for (const name of WITHHELD_REQUEST_HEADERS) delete out[name]
      return out
    },
    // The service must not set cookies on the tracker's origin (it could replace the session).
    rewriteHeaders: (headers) => {
      const { 'set-cookie': _dropped, ...rest } = headers
      return rest
    },
    onResponse: (_req, res, upstream) => {
      stats.relayed += 1
      res.send(upstream.stream)
    },
    onError: (res, { error }) => {
      const timedOut = (error as { statusCode?: number }).statusCode === 504
      bump(stats.failures_by_reason, timedOut ? 'timeout' : 'unavailable')
      log.warn({ err: error, path }, 'inventory service did not answer')
      if (timedOut) res.code(504).send({ detail: 'Inventory service timed out' })
      else res.code(502).send({ detail: 'Inventory service unavailable' })
    },
  })

  await app.register(async (scope) => {
    await scope.register(replyFrom, {
      undici: { connect: { timeout: timeoutMs } },
      // Sources are absolute URLs, each distinct: a cache of them would only churn.
      disableCache: true,
      destroyAgent: true,
      disableRequestLogging: true,
    })
    // Bodies pass through untouched, whatever their type (`/inv/*` writes): no parsing, no 415.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

    // No schema: the primary passes any name on, and the inventory service judges it.
    scope.get<{ Params: { character: string } }>('/inventory/:character', async (req, reply) => {
      const { character } = req.params
      // FastAPI's `{character_name}` never matches an empty segment.
      if (character === '') return detail(reply, 404, 'Not Found')
      return forward(req, reply, `/inventory/${encodeURIComponent(character)}`)
    })
    scope.all('/inv/*', async (req, reply) => {
      const raw = req.url
      const query = raw.indexOf('?')
      // The raw path keeps the client's percent-encoding; the legacy strips the `/inv` prefix.
      return forward(req, reply, (query < 0 ? raw : raw.slice(0, query)).slice('/inv'.length))
    })
  })
}
