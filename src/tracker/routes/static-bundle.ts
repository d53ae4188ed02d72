import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { basePathScriptHash, normalizeBasePath, prefixPath, rewriteCss, rewriteHtml } from './base-path.ts'
import { detail } from './read-api.ts'

export interface StaticBundleOptions {
  /**
   * The path prefix the bundle is browsed under (`/ts` behind nginx's `location /ts/`). When set,
   * served HTML and CSS are rewritten (base-path.ts) and redirects point below it; unset, every
   * byte is served as it is on disk.
   */
  basePath?: string
}

/** The not-found handler that goes with a bundle: see {@link registerStaticBundle}. */
export type SpaFallback = (req: FastifyRequest, reply: FastifyReply) => FastifyReply | Promise<FastifyReply>

/**
 * `GET /*` (CONTRACT.md §4): the built React bundle from the static directory, `/classic` and
 * the legacy `*.html` pages included, with `index.html` for client-side routes. Registered after
 * every API route. Returns the not-found handler to install: client routes (a GET asking for
 * HTML) get `index.html`, any other unknown path keeps FastAPI's JSON 404.
 */
export async function registerStaticBundle(
  app: FastifyInstance,
  staticDir: string,
  options: StaticBundleOptions = {},
): Promise<SpaFallback> {
  const root = resolve(staticDir)
  await app.register(fastifyStatic, {
    root,
    wildcard: true,
    index: ['index.html'],
    // `/classic` -> `/classic/`, where the classic dashboard's index.html lives.
    redirect: true,
  })
  const basePath = normalizeBasePath(options.basePath)
  if (basePath === undefined) {
    return (req, reply) =>
      wantsHtml(req)
        ? reply.type('text/html').sendFile('index.html', { maxAge: 0, immutable: false })
        : detail(reply, 404, 'Not Found')
  }

  app.log.info(
    { component: 'static', base_path: basePath, csp_script_src: basePathScriptHash(basePath) },
    'serving the dashboard below a base path',
  )
  const rewritten = new RewrittenFiles(basePath)
  // HTML and CSS of the bundle are answered here, before @fastify/static streams them unchanged.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url !== '/*' || (req.method !== 'GET' && req.method !== 'HEAD')) return
    const file = bundleFile(root, req.url)
    const doc = file === undefined ? undefined : await rewritten.get(file)
    if (doc !== undefined) return sendRewritten(req, reply, doc)
  })
  // Redirects (`/classic` -> `/classic/`) must stay below the prefix too.
  app.addHook('onSend', async (_req, reply, payload) => {
    const location = reply.getHeader('location')
    if (typeof location === 'string') reply.header('location', prefixPath(location, basePath))
    return payload
  })
  return async (req, reply) => {
    const doc = wantsHtml(req) ? await rewritten.get(join(root, 'index.html')) : undefined
    return doc === undefined ? detail(reply, 404, 'Not Found') : sendRewritten(req, reply, doc)
  }
}

const wantsHtml = (req: FastifyRequest): boolean =>
  req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')

/** An HTML or CSS file of the bundle, rewritten for the prefix. */
interface Rewritten {
  body: Buffer
  type: string
  etag: string
  cacheControl: string
  /** The file as it was when rewritten; a change on disk rewrites it again. */
  mtimeMs: number
  size: number
}

const REWRITTEN_TYPES = new Map([
  ['.html', { type: 'text/html; charset=utf-8', rewrite: rewriteHtml, cacheControl: 'no-cache' }],
  // @fastify/static's default for every other file of the bundle.
  ['.css', { type: 'text/css; charset=utf-8', rewrite: rewriteCss, cacheControl: 'public, max-age=0' }],
])

/**
 * The file a bundle URL names when it is HTML or CSS (a trailing `/` names its `index.html`),
 * inside `root`; undefined for anything else (`..` included), which @fastify/static then answers
 * as it always does.
 */
function bundleFile(root: string, url: string): string | undefined {
  let path: string
  try {
    path = decodeURIComponent(new URL(url, 'http://x').pathname)
  } catch {
    return undefined
  }
  if (path.includes('\0') || path.split('/').some((segment) => segment === '.' || segment === '..'))
    return undefined
  if (path.endsWith('/')) path += 'index.html'
  if (!REWRITTEN_TYPES.has(extensionOf(path))) return undefined
  const file = join(root, path)
  return file.startsWith(root + sep) ? file : undefined
}

const extensionOf = (path: string): string => path.slice(path.lastIndexOf('.')).toLowerCase()

/**
 * Rewritten files, kept until they change on disk (one `stat` per request, no re-parse). The
 * entity tag hashes the served bytes; there is no `Last-Modified`, since the same file serves
 * different bytes under another prefix.
 */
class RewrittenFiles {
  readonly #basePath: string
  readonly #cache = new LRUCache<string, Rewritten>({ max: 256 })

  constructor(basePath: string) {
    this.#basePath = basePath
  }

  async get(file: string): Promise<Rewritten | undefined> {
    const kind = REWRITTEN_TYPES.get(extensionOf(file))
    if (kind === undefined) return undefined
    const info = await stat(file).catch(() => undefined)
    if (info === undefined || !info.isFile()) return undefined
    const hit = this.#cache.get(file)
    if (hit !== undefined && hit.mtimeMs === info.mtimeMs && hit.size === info.size) return hit
    const body = Buffer.from(kind.rewrite(await readFile(file, 'utf8'), this.#basePath))
    const etag = `"${createHash('sha1').update(body).digest('base64url')}"`
    const { type, cacheControl } = kind
    const doc = { body, type, etag, cacheControl, mtimeMs: info.mtimeMs, size: info.size }
    this.#cache.set(file, doc)
    return doc
  }
}

function sendRewritten(req: FastifyRequest, reply: FastifyReply, doc: Rewritten): FastifyReply {
  reply.header('etag', doc.etag).header('cache-control', doc.cacheControl).type(doc.type)
  // RFC 9110 §13.1.2: If-None-Match compares weakly; `*` matches any current representation.
  const tags = (req.headers['if-none-match'] ?? '').split(',').map((t) => t.trim().replace(/^W\//, ''))
  if (tags.includes(doc.etag) || tags.includes('*')) return reply.code(304).send()
  return reply.send(doc.body)
}
