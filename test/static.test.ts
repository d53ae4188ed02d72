import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, type RunningTracker, startTracker } from './support/tracker.ts'

const dir = mkdtempSync(join(tmpdir(), 'overlord-static-'))
let t: RunningTracker
beforeAll(async () => {
  writeFileSync(join(dir, 'index.html'), '<html>react dashboard</html>')
  mkdirSync(join(dir, 'assets'))
  writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)')
  mkdirSync(join(dir, 'classic'))
  writeFileSync(join(dir, 'classic', 'index.html'), '<html>classic</html>')
  writeFileSync(join(dir, 'map.html'), '<html>legacy map</html>')
  t = await startTracker({ staticDir: dir })
})
afterAll(async () => {
  await t.close()
  rmSync(dir, { recursive: true, force: true })
})

const get = async (path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${t.url}${path}`, { headers })
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() }
}

describe('the dashboard bundle (GET /*)', () => {
  it('serves the bundle, the classic page and legacy .html pages', async () => {
    expect(await get('/')).toMatchObject({ status: 200, text: '<html>react dashboard</html>' })
    expect(await get('/assets/app.js')).toMatchObject({
      status: 200,
      type: expect.stringContaining('javascript'),
    })
    expect(await get('/classic/')).toMatchObject({ status: 200, text: '<html>classic</html>' })
    expect((await fetch(`${t.url}/classic`, { redirect: 'manual' })).status).toBe(301)
    expect(await get('/map.html')).toMatchObject({ status: 200, text: '<html>legacy map</html>' })
  })

  it('answers client routes with index.html, other unknown paths with the JSON 404', async () => {
    expect(await get('/player/Larsson', { accept: 'text/html,application/xhtml+xml' })).toMatchObject({
      status: 200,
      text: '<html>react dashboard</html>',
    })
    expect(await getJson(`${t.url}/no-such-route`)).toEqual({ status: 404, body: { detail: 'Not Found' } })
  })

  it('keeps API routes ahead of the bundle, and the bundle public while the API is not', async () => {
    expect((await getJson(`${t.url}/live`)).body).toEqual({ players: [] })
    const proxied = { 'X-Forwarded-For': '203.0.113.9' }
    expect((await get('/', proxied)).status).toBe(200)
    expect((await getJson(`${t.url}/live`, { headers: proxied })).status).toBe(401)
  })
})
