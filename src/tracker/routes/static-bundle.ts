import { resolve } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { detail } from './read-api.ts'

/**
 * `GET /*` (CONTRACT.md §4): the built React bundle from the static directory, `/classic` and
 * the legacy `*.html` pages included, with `index.html` for client-side routes. Registered after
 * every API route; an unknown path that does not ask for HTML keeps FastAPI's JSON 404.
 */
export async function registerStaticBundle(app: FastifyInstance, staticDir: string): Promise<void> {
  await app.register(fastifyStatic, {
    root: resolve(staticDir),
    wildcard: true,
    index: ['index.html'],
    // `/classic` -> `/classic/`, where the classic dashboard's index.html lives.
    redirect: true,
  })
}

/** The not-found handler with a bundle: client routes get `index.html`, anything else the JSON 404. */
export function spaFallback(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const wantsHtml = req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')
  if (wantsHtml) return reply.type('text/html').sendFile('index.html', { maxAge: 0, immutable: false })
  return detail(reply, 404, 'Not Found')
}
