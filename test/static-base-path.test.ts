import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { request } from 'node:http'
import { basename, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basePathScriptHash } from '../src/tracker/routes/base-path.ts'
import { getJson, type RunningTracker, startTracker } from './support/tracker.ts'

// The bundle below a prefix (BASE_PATH=/ts), served by a real tracker.
const dir = mkdtempSync(join(tmpdir(), 'overlord-base-path-'))
const INDEX = '<!doctype html><html><head><script type="module" src="/assets/app.js"></script></head></html>'
const CSS = 'body{background:url(/assets/bg.png)}'
const JS = 'fetch("/live"); const u = "<a href=\\"/x\\">"'
let t: RunningTracker
beforeAll(async () => {
  writeFileSync(join(dir, 'index.html'), INDEX)
  mkdirSync(join(dir, 'assets'))
  writeFileSync(join(dir, 'assets', 'app.js'), JS)
  writeFileSync(join(dir, 'assets', 'app.css'), CSS)
  mkdirSync(join(dir, 'classic'))
  writeFileSync(join(dir, 'classic', 'index.html'), '<html><body><a href="/">back</a></body></html>')
  writeFileSync(join(dir, 'map.html'), '<img src="/assets/map.png">')
  writeFileSync(join(dir, '.secret.html'), '<p>hidden</p>')
  t = await startTracker({ staticDir: dir, basePath: '/ts' })
})
afterAll(async () => {
  await t.close()
  rmSync(dir, { recursive: true, force: true })
})

const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
  const res = await fetch(`${t.url}${path}`, { headers, method, redirect: 'manual' })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text }
}

describe('the dashboard bundle below BASE_PATH', () => {
  it('rewrites index.html, with the script first and an exact content-length', async () => {
    const res = await get('/')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.text).toMatch(/^<!doctype html><html><head><script data-overlord-base-path="\/ts">/)
    expect(res.text).toContain('src="/ts/assets/app.js"')
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(res.text))
    expect((await get('/index.html')).text).toBe(res.text)
  })

  it('answers client routes, /classic/ and legacy pages rewritten, and keeps redirects below the prefix', async () => {
    const index = (await get('/')).text
    expect(await get('/player/Larsson', { accept: 'text/html' })).toMatchObject({ status: 200, text: index })
    expect((await get('/classic/')).text).toContain('<a href="/ts/">back</a>')
    expect((await get('/map.html')).text).toContain('<img src="/ts/assets/map.png">')
    const redirect = await get('/classic')
    expect(redirect.status).toBe(301)
    expect(redirect.headers.get('location')).toBe('/ts/classic/')
  })

  it('rewrites CSS and serves every other file byte for byte', async () => {
    const css = await get('/assets/app.css')
    expect(css.text).toBe('body{background:url(/ts/assets/bg.png)}')
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect(css.headers.get('cache-control')).toBe('public, max-age=0')
    const js = await get('/assets/app.js')
    expect(js.text).toBe(JS)
    expect(js.headers.get('content-type')).toContain('javascript')
  })

  it('revalidates with the entity tag (304, HEAD) and notices a changed file', async () => {
    const first = await get('/')
    const etag = first.headers.get('etag')!
    expect(etag).toMatch(/^"[\w-]+"$/)
    expect(first.headers.get('last-modified')).toBeNull()
    expect((await get('/', { 'if-none-match': etag })).status).toBe(304)
    expect((await get('/', { 'if-none-match': `"other", W/${etag}` })).status).toBe(304)
    const head = await get('/', {}, 'HEAD')
    expect(head).toMatchObject({ status: 200, text: '' })
    expect(head.headers.get('content-length')).toBe(first.headers.get('content-length'))

    writeFileSync(join(dir, 'index.html'), INDEX.replace('<head>', '<head><title>v2</title>'))
    try {
      const changed = await get('/', { 'if-none-match': etag })
      expect(changed.status).toBe(200)
      expect(changed.text).toContain('<title>v2</title>')
      expect(changed.headers.get('etag')).not.toBe(etag)
    } finally {
      writeFileSync(join(dir, 'index.html'), INDEX)
    }
  })

  it('keeps the JSON 404, the path checks and the API as they are', async () => {
    expect(await getJson(`${t.url}/no-such-route`)).toEqual({ status: 404, body: { detail: 'Not Found' } })
    // @fastify/static serves dotfiles (its default); below the prefix they are rewritten like any page.
    expect((await get('/.secret.html')).text).toMatch(/^<script [^>]+>.+<\/script><p>hidden<\/p>$/s)
    // A raw request line: fetch would normalise the dot segments away before sending.
    const outside = `${basename(dir)}-outside.html`
    writeFileSync(join(dir, '..', outside), '<p>outside</p>')
    try {
      for (const path of [`/%2e%2e/${outside}`, `/..%2f${outside}`]) {
        const answer = await new Promise<{ status?: number; body: string }>((resolve, reject) =>
          request({ host: '127.0.0.1', port: new URL(t.url).port, path }, (res) => {
            let body = ''
            res.on('data', (chunk: Buffer) => {
              body += chunk
            })
            res.on('end', () => resolve({ status: res.statusCode, body }))
          })
            .on('error', reject)
            .end(),
        )
        // @fastify/static's own answer to a dot segment (403), never the file.
        expect(answer.status, path).toBeGreaterThanOrEqual(400)
        expect(answer.body, path).not.toContain('outside')
      }
    } finally {
      rmSync(join(dir, '..', outside))
    }
    expect((await getJson(`${t.url}/live`)).body).toEqual({ players: [] })
  })

  it('leaves the files on disk untouched', () => {
    expect(readFileSync(join(dir, 'assets', 'app.css'), 'utf8')).toBe(CSS)
    expect(basePathScriptHash('/ts')).toMatch(/^'sha256-[A-Za-z0-9+/]+=*'$/)
  })
})
