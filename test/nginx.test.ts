import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { getJson, type RunningTracker, startTracker } from './support/tracker.ts'

// The shipped nginx snippets, run by a real nginx in front of a real shadow tracker.
const NGINX = '/usr/sbin/nginx'
const dir = mkdtempSync(join(tmpdir(), 'overlord-nginx-'))
let tracker: RunningTracker
let nginx: ChildProcess
let base: string

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as net.AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

beforeAll(async () => {
  const bundle = join(dir, 'bundle')
  mkdirSync(bundle)
  writeFileSync(join(bundle, 'index.html'), '<html>shadow dashboard</html>')
  tracker = await startTracker({ staticDir: bundle, buildVersion: '2026.11.22.1200-abc1234' })
  const trackerPort = new URL(tracker.url).port
  const upstream = readFileSync('nginx/shadow-upstream.conf', 'utf8').replace(
    'server 127.0.0.1:8765;',
    `server 127.0.0.1:${trackerPort};`,
  )
  writeFileSync(join(dir, 'upstream.conf'), upstream)
  writeFileSync(join(dir, 'locations.conf'), readFileSync('nginx/shadow-locations.conf', 'utf8'))
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  include ${dir}/upstream.conf;
  server {
    listen 127.0.0.1:${port};
    include ${dir}/locations.conf;
  }
}
`,
  )
  nginx = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'inherit' })
  for (;;) {
    try {
      await fetch(`${base}/ts/api-version`)
      break
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
})
afterAll(async () => {
  nginx?.kill('SIGQUIT')
  await tracker?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('nginx serves the shadow at /ts/', () => {
  it('strips /ts/api/ and passes the hyphenated routes through', async () => {
    expect(await getJson(`${base}/ts/api-version`)).toEqual({
      status: 200,
      body: { version: '2026.11.22.1200-abc1234' },
    })
    expect(await getJson(`${base}/ts/api/health`)).toEqual({ status: 200, body: { status: 'ok' } })
  })

  it('serves the dashboard bundle and its client routes', async () => {
    const page = await fetch(`${base}/ts/`)
    expect(await page.text()).toBe('<html>shadow dashboard</html>')
    const route = await fetch(`${base}/ts/player/Larsson`, { headers: { accept: 'text/html' } })
    expect(await route.text()).toBe('<html>shadow dashboard</html>')
  })

  it('never grants internal trust to proxied requests (the API needs a session)', async () => {
    expect(await getJson(`${base}/ts/api/live`)).toEqual({
      status: 401,
      body: { detail: 'Not authenticated' },
    })
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ts/ws/live`)
    const code = await new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c)))
    expect(code).toBe(1008)
  })
})
