import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
} from './support/tracker.ts'

/** A clock the test sets by hand, so the windows of /trails and /spawns/heatmap are exact. */
const clock = {
  t: Date.UTC(2026, 10, 22, 12, 0, 0),
  now() {
    return this.t
  },
}
const iso = (ms: number) => new Date(ms).toISOString()

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker({ clock, liveCacheMs: 3_600_000 })
  const ws = await connectPlugin(t.wsUrl)
  const now = clock.t
  await sendFrames(t.url, ws, [
    telemetry('Walker', { timestamp: iso(now - 700_000), ew: 1 }),
    telemetry('Walker', { timestamp: iso(now - 100_000), ew: 2 }),
    telemetry('Walker', { timestamp: iso(now - 50_000), ew: 3 }),
    {
      type: 'spawn',
      character_name: 'Walker',
      mob: 'Drudge',
      ew: 5,
      ns: 6,
      z: 0,
      timestamp: iso(now - 60_000),
    },
    {
      type: 'spawn',
      character_name: 'Walker',
      mob: 'Drudge',
      ew: 5,
      ns: 6,
      z: 0,
      timestamp: iso(now - 90_000),
    },
    // Outside the default 24 h window, inside a 48 h one.
    {
      type: 'spawn',
      character_name: 'Walker',
      mob: 'Wasp',
      ew: 9,
      ns: 9,
      z: 0,
      timestamp: iso(now - 30 * 3_600_000),
    },
  ])
  await t.tracker.settle()
  ws.close()
})
afterAll(() => t.close())

/** Sends `text` as the whole request on a raw socket and reads the answer until the server closes. */
async function rawRequest(text: string): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(t.url)
  const socket = connect(Number(port), hostname)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write(text))
    socket.once('close', () => resolve())
    socket.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' ? resolve() : reject(err),
    )
  })
  const response = Buffer.concat(chunks).toString('utf8')
  const [head = '', body = ''] = response.split('\r\n\r\n')
  expect(head).toMatch(/content-type: application\/json/i)
  return { status: Number(head.split(' ')[1]), body: JSON.parse(body) }
}

describe('query and path parameters that used to answer 500', () => {
  it('/trails?seconds=1e12 answers 422 int_parsing, not 500', async () => {
    const res = await getJson(`${t.url}/trails?seconds=1e12`)
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({
      type: 'int_parsing',
      loc: ['query', 'seconds'],
      input: '1e12',
    })
  })

  it('/trails?seconds=1e300 answers 422, not 500', async () => {
    const res = await getJson(`${t.url}/trails?seconds=1e300`)
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({ type: 'int_parsing', loc: ['query', 'seconds'] })
  })

  it('/spawns/heatmap?hours=1e308 answers 422, not 500', async () => {
    const res = await getJson(`${t.url}/spawns/heatmap?hours=1e308`)
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({ type: 'int_parsing', loc: ['query', 'hours'] })
  })

  it('/stats/%00 (NUL in a path parameter) answers 422, not 500', async () => {
    const res = await getJson(`${t.url}/stats/%00`)
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({
      type: 'string_pattern_mismatch',
      loc: ['path', 'character_name'],
      input: '\u0000',
    })
  })

  it('/history?character=%00 (NUL in a query parameter) answers 422, not 500', async () => {
    const res = await getJson(`${t.url}/history?character=%00`)
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({ type: 'string_pattern_mismatch', loc: ['query', 'character'] })
  })
})

describe('query parameters that used to be accepted or answered in the wrong shape', () => {
  it('/history?from=2026-13-45T99:99:99Z (a date that used to roll over) answers pydantic 422', async () => {
    const res = await getJson(`${t.url}/history?from=2026-13-45T99:99:99Z`)
    expect(res).toEqual({
      status: 422,
      body: {
        detail: [
          {
            type: 'datetime_from_date_parsing',
            loc: ['query', 'from'],
            msg: 'Input should be a valid datetime or date, month value is outside expected range of 1-12',
            input: '2026-13-45T99:99:99Z',
            ctx: { error: 'month value is outside expected range of 1-12' },
          },
        ],
      },
    })
  })

  it('/trails?seconds=1.5 answers 422 int_parsing (was 200)', async () => {
    const res = await getJson(`${t.url}/trails?seconds=1.5`)
    expect(res.status).toBe(422)
    expect(res.body.detail).toEqual([
      {
        type: 'int_parsing',
        loc: ['query', 'seconds'],
        msg: 'Input should be a valid integer, unable to parse string as an integer',
        input: '1.5',
      },
    ])
  })

  it('/spawns/heatmap?limit=100001 answers 422 less_than_equal (was 200)', async () => {
    const res = await getJson(`${t.url}/spawns/heatmap?limit=100001`)
    expect(res.status).toBe(422)
    expect(res.body.detail).toEqual([
      {
        type: 'less_than_equal',
        loc: ['query', 'limit'],
        msg: 'Input should be less than or equal to 100000',
        input: '100001',
        ctx: { le: 100000 },
      },
    ])
  })

  it("the 422 body has pydantic v2's exact shape: type, loc, msg, input, ctx", async () => {
    const res = await fetch(`${t.url}/trails?seconds=-1`)
    expect(res.status).toBe(422)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.text()).toBe(
      '{"detail":[{"type":"greater_than_equal","loc":["query","seconds"],' +
        '"msg":"Input should be greater than or equal to 0","input":"-1","ctx":{"ge":0}}]}',
    )
  })

  it('a 20 KB header answers 431 {"detail"} (was Fastify\'s {"error","message","statusCode"})', async () => {
    const res = await rawRequest(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(res).toEqual({ status: 431, body: { detail: 'Request Header Fields Too Large' } })
  })

  it('a malformed request line answers 400 {"detail"} (was Fastify\'s shape)', async () => {
    const res = await rawRequest('THIS IS NOT HTTP\r\n\r\n')
    expect(res).toEqual({ status: 400, body: { detail: 'Bad Request' } })
  })

  it('a bad percent-encoding in the URL answers 400 {"detail"} (was Fastify\'s shape)', async () => {
    expect(await getJson(`${t.url}/stats/%E0%A4%A`)).toEqual({ status: 400, body: { detail: 'Bad Request' } })
  })
})

describe('every path parameter and query bound', () => {
  it.each([
    ['/character-stats/%00', ['path', 'name'], 'string_pattern_mismatch'],
    ['/combat-stats/%00', ['path', 'name'], 'string_pattern_mismatch'],
    [`/stats/${'n'.repeat(257)}`, ['path', 'character_name'], 'string_too_long'],
    [`/combat-stats/${'n'.repeat(257)}`, ['path', 'name'], 'string_too_long'],
    [`/history?character=${'n'.repeat(257)}`, ['query', 'character'], 'string_too_long'],
    ['/history?to=2026-02-30T00:00:00Z', ['query', 'to'], 'datetime_from_date_parsing'],
    ['/trails?seconds=3153600001', ['query', 'seconds'], 'less_than_equal'],
    ['/spawns/heatmap?hours=0', ['query', 'hours'], 'greater_than_equal'],
    ['/spawns/heatmap?hours=8761', ['query', 'hours'], 'less_than_equal'],
    ['/spawns/heatmap?limit=0', ['query', 'limit'], 'greater_than_equal'],
    ['/spawns/heatmap?hours=0.5', ['query', 'hours'], 'int_parsing'],
  ])('%s answers 422 %s %s', async (path, loc, type) => {
    const res = await getJson(`${t.url}${path}`)
    expect(res.status).toBe(422)
    expect(res.body.detail).toHaveLength(1)
    expect(res.body.detail[0]).toMatchObject({ loc, type })
  })

  it.each(['1e12', 'Infinity', '-Infinity', 'NaN', '0x10', '', ' ', '1.', '１'])(
    'seconds=%j is not an integer to pydantic: 422 int_parsing, never a 500',
    async (value) => {
      const res = await getJson(`${t.url}/trails?seconds=${encodeURIComponent(value)}`)
      expect(res.status).toBe(422)
      expect(res.body.detail).toEqual([
        {
          type: 'int_parsing',
          loc: ['query', 'seconds'],
          msg: 'Input should be a valid integer, unable to parse string as an integer',
          input: value,
        },
      ])
    },
  )

  it('a number too large for any window answers less_than_equal with the text as sent', async () => {
    const huge = '9'.repeat(400)
    const res = await getJson(`${t.url}/trails?seconds=${huge}`)
    expect(res.status).toBe(422)
    expect(res.body.detail[0]).toMatchObject({
      type: 'less_than_equal',
      input: huge,
      ctx: { le: 3153600000 },
    })
  })

  it.each(['-0', '600', '+600', ' 600 ', '600.0', '6_00', '0600'])(
    'seconds=%j is an integer to pydantic: 200',
    async (value) => {
      const res = await getJson(`${t.url}/trails?seconds=${encodeURIComponent(value)}`)
      expect(res.status).toBe(200)
    },
  )
})

describe('valid requests answer as before', () => {
  it('/trails without a query uses the default 600 s window', async () => {
    const res = await getJson(`${t.url}/trails`)
    expect(res.status).toBe(200)
    expect(res.body.trails.map((r: any) => r.ew)).toEqual([2, 3])
    const all = await getJson(`${t.url}/trails?seconds=3153600000`)
    expect(all.body.trails.map((r: any) => r.ew)).toEqual([1, 2, 3])
    const none = await getJson(`${t.url}/trails?seconds=0`)
    expect(none.body.trails).toEqual([])
  })

  it('a repeated query parameter takes its last value, as Starlette does', async () => {
    const res = await getJson(`${t.url}/trails?seconds=1e12&seconds=3153600000`)
    expect(res.status).toBe(200)
    expect(res.body.trails).toHaveLength(3)
  })

  it('/spawns/heatmap without a query echoes hours_window 24 and the default limit', async () => {
    expect(await getJson(`${t.url}/spawns/heatmap`)).toEqual({
      status: 200,
      body: { spawn_points: [{ ew: 5, ns: 6, intensity: 2 }], hours_window: 24, total_points: 1 },
    })
    const wide = await getJson(`${t.url}/spawns/heatmap?hours=48&limit=1`)
    expect(wide.body).toEqual({
      spawn_points: [{ ew: 5, ns: 6, intensity: 2 }],
      hours_window: 48,
      total_points: 1,
    })
    expect((await getJson(`${t.url}/spawns/heatmap?hours=8760&limit=100000`)).body.total_points).toBe(2)
  })

  it('/history: empty from, to and character still mean "absent"; valid instants filter', async () => {
    const res = await getJson(`${t.url}/history?from=&to=&character=`)
    expect(res.status).toBe(200)
    expect(res.body.data).toHaveLength(3)
    const since = await getJson(
      `${t.url}/history?character=Walker&from=${encodeURIComponent('2026-11-22T13:50:00+02:00')}`,
    )
    expect(since.body.data.map((r: any) => r.ew)).toEqual([2, 3])
  })

  it('path parameters up to 256 characters, and /stats, /character-stats, /combat-stats as before', async () => {
    expect((await getJson(`${t.url}/stats/Walker`)).body.latest_snapshot.ew).toBe(3)
    expect(await getJson(`${t.url}/stats/${'n'.repeat(256)}`)).toEqual({
      status: 404,
      body: { detail: 'Character not found' },
    })
    expect((await getJson(`${t.url}/character-stats/Nobody`)).status).toBe(404)
    expect((await getJson(`${t.url}/combat-stats/Walker`)).status).toBe(200)
  })
})
