import { createServer, type IncomingHttpHeaders, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { getJson, type RunningTracker, startTracker } from './support/tracker.ts'

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

// A stand-in inventory service on loopback: records what reaches it and answers by path.
const seen: Seen[] = []
const stalled: ServerResponse[] = []
const inventoryService = createServer(async (req, res) => {
  let body = ''
  for await (const chunk of req) body += chunk
  const url = req.url ?? ''
  seen.push({ method: req.method ?? '', url, headers: req.headers, body })
  if (url.startsWith('/stall')) {
    stalled.push(res)
    return
  }
  if (url.startsWith('/teapot')) {
    res.writeHead(418, { 'content-type': 'text/plain; charset=utf-8', 'set-cookie': 'session=evil' })
    res.end('short and stout')
    return
  }
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-inventory': 'yes' })
  res.end(JSON.stringify({ method: req.method, url, body }))
})

/** A GET sent with its path exactly as given (fetch would resolve `..` segments first). */
function rawGet(base: string, path: string): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    request({ host: hostname, port, path }, async (res) => {
      let text = ''
      for await (const chunk of res) text += chunk
      resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) })
    })
      .on('error', reject)
      .end()
  })
}

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  const { port } = probe.address() as AddressInfo
  await new Promise((r) => probe.close(r))
  return port
}

let serviceUrl: string
let shadow: RunningTracker
let enabled: RunningTracker
beforeAll(async () => {
  await new Promise<void>((r) => inventoryService.listen(0, '127.0.0.1', r))
  serviceUrl = `http://127.0.0.1:${(inventoryService.address() as AddressInfo).port}`
  shadow = await startTracker({ inventoryServiceUrl: serviceUrl, inventoryTimeoutMs: 300 })
  enabled = await startTracker({ inventoryServiceUrl: `${serviceUrl}/`, inventoryWritesEnabled: true })
})
afterAll(async () => {
  await shadow.close()
  await enabled.close()
  for (const res of stalled) res.destroy()
  inventoryService.closeAllConnections()
  inventoryService.close()
})
beforeEach(() => {
  seen.length = 0
})

describe('inventory reverse proxy (CONTRACT §4)', () => {
  it('proxies GET /inventory/{character} with the name path-encoded and the query string kept', async () => {
    const res = await fetch(`${shadow.url}/inventory/Sir%20Bob%2Fthe%20Bold?include=equipped&q=a%20b`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(res.headers.get('x-inventory')).toBe('yes')
    const url = '/inventory/Sir%20Bob%2Fthe%20Bold?include=equipped&q=a%20b'
    expect(await res.json()).toEqual({ method: 'GET', url, body: '' })
    expect(seen.map((s) => s.url)).toEqual([url])
  })

  it('maps /inv/* onto the service root, stripping /inv', async () => {
    const { status, body } = await getJson(`${shadow.url}/inv/search/items?name=Pyreal%20Mote&limit=5`)
    expect(status).toBe(200)
    expect(body.url).toBe('/search/items?name=Pyreal%20Mote&limit=5')
    expect((await getJson(`${enabled.url}/inv/sets/list`)).body.url).toBe('/sets/list')
  })

  it('keeps a base path in INVENTORY_SERVICE_URL and lets no dot segment climb out of it', async () => {
    const based = await startTracker({ inventoryServiceUrl: `${serviceUrl}/api/` })
    try {
      expect((await getJson(`${based.url}/inv/items?x=1`)).body.url).toBe('/api/items?x=1')
      expect((await getJson(`${based.url}/inventory/Bob`)).body.url).toBe('/api/inventory/Bob')
      for (const path of [
        '/inv/../admin',
        '/inv/%2e%2e/admin',
        '/inv/a%2F..%2F..%2Fadmin',
        '/inventory/..',
      ]) {
        expect(await rawGet(based.url, path)).toEqual({
          status: 400,
          body: { detail: 'Invalid inventory path' },
        })
      }
      expect(seen.map((s) => s.url)).toEqual(['/api/items?x=1', '/api/inventory/Bob'])
    } finally {
      await based.close()
    }
  })

  it('answers 404 to an empty character name, as FastAPI does', async () => {
    expect(await getJson(`${shadow.url}/inventory/`)).toEqual({ status: 404, body: { detail: 'Not Found' } })
    expect(seen).toEqual([])
  })

  it('relays the upstream status, content type and body as they are, without its cookies', async () => {
    const res = await fetch(`${shadow.url}/inv/teapot`)
    expect(res.status).toBe(418)
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(res.headers.get('set-cookie')).toBeNull()
    expect(await res.text()).toBe('short and stout')
  })

  it("does not pass the user's cookie or authorization on to the service", async () => {
    await fetch(`${shadow.url}/inventory/Bob`, {
      headers: { cookie: 'session=abc', authorization: 'Bearer t', accept: 'application/json' },
    })
    expect(seen[0]?.headers.cookie).toBeUndefined()
    expect(seen[0]?.headers.authorization).toBeUndefined()
    expect(seen[0]?.headers.accept).toBe('application/json')
  })

  it('needs auth like every route: a forwarded request without a session gets 401', async () => {
    const headers = { 'x-forwarded-for': '203.0.113.9' }
    for (const path of ['/inventory/Bob', '/inv/search/items']) {
      const { status, body } = await getJson(`${shadow.url}${path}`, { headers })
      expect(status).toBe(401)
      expect(body).toEqual({ detail: 'Not authenticated' })
    }
    expect(seen).toEqual([])
  })

  it('answers 503 exactly as the primary does when no service is configured', async () => {
    const none = await startTracker()
    try {
      for (const path of ['/inventory/Bob', '/inv/search/items']) {
        const res = await fetch(`${none.url}${path}`)
        expect(res.status).toBe(503)
        expect(await res.text()).toBe('{"detail":"Inventory service not configured"}')
      }
      expect((await getJson(`${none.url}/metrics.json`)).body.inventory_proxy.not_configured).toBe(2)
    } finally {
      await none.close()
    }
  })

  it('answers 502 when nothing listens at the service URL', async () => {
    const dead = await startTracker({ inventoryServiceUrl: `http://127.0.0.1:${await deadPort()}` })
    try {
      expect(await getJson(`${dead.url}/inventory/Bob`)).toEqual({
        status: 502,
        body: { detail: 'Inventory service unavailable' },
      })
      const m = (await getJson(`${dead.url}/metrics.json`)).body.inventory_proxy
      expect(m).toMatchObject({ requests: 1, relayed: 0, failures_by_reason: { unavailable: 1 } })
    } finally {
      await dead.close()
    }
  })

  it('answers 504 when the service stalls past the timeout', async () => {
    const started = Date.now()
    expect(await getJson(`${shadow.url}/inv/stall`)).toEqual({
      status: 504,
      body: { detail: 'Inventory service timed out' },
    })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(
      (await getJson(`${shadow.url}/metrics.json`)).body.inventory_proxy.failures_by_reason.timeout,
    ).toBe(1)
  })
})

describe('inventory writes through /inv/* (CONTRACT §10)', () => {
  it('a shadow refuses them with 503 and never lets them reach the service', async () => {
    const before = (await getJson(`${shadow.url}/metrics.json`)).body.inventory_proxy.writes_refused
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${shadow.url}/inv/items/42`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'DELETE' ? undefined : '{"name":"Pyreal Mote"}',
      })
      expect(res.status).toBe(503)
      expect(await res.json()).toEqual({ detail: 'Inventory writes are disabled on this shadow tracker' })
    }
    expect(seen).toEqual([])
    // Safe methods are reads (RFC 9110 §9.2.1): a shadow passes them on.
    expect((await fetch(`${shadow.url}/inv/items/42`, { method: 'HEAD' })).status).toBe(200)
    expect(seen.map((s) => s.method)).toEqual(['HEAD'])
    const after = (await getJson(`${shadow.url}/metrics.json`)).body.inventory_proxy.writes_refused
    expect(after - before).toBe(3)
  })

  it('with plugin side effects enabled they pass through, bodies byte for byte, whatever their type', async () => {
    const json = '{"name": "Pyreal Mote",  "count":[1, 2]}'
    const res = await fetch(`${enabled.url}/inv/items/42?dry=1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: json,
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ method: 'PUT', url: '/items/42?dry=1', body: json })
    const csv = await getJson(`${enabled.url}/inv/import`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: 'id,name\n1,Mote\n',
    })
    expect(csv.body.body).toBe('id,name\n1,Mote\n')
    const del = await getJson(`${enabled.url}/inv/items/42`, { method: 'DELETE' })
    expect(del.body).toMatchObject({ method: 'DELETE', url: '/items/42' })
    expect(seen.map((s) => [s.method, s.headers['content-type']])).toEqual([
      ['PUT', 'application/json'],
      ['POST', 'text/csv'],
      ['DELETE', undefined],
    ])
  })
})
