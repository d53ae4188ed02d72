import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { buildInlineProxy, type InlineProxy } from '../src/tee/inline-proxy.ts'
import { unaccountedFrames } from '../src/tee/mirror-counters.ts'
import { ShadowMirror } from '../src/tee/shadow-mirror.ts'
import { freePort, waitFor, WsSink } from './support/ws-sink.ts'

const logger = pino({ level: 'silent' })
const PLUGIN_SECRET = 'primary-plugin-secret'
const SHADOW_SECRET = 'shadow-plugin-secret'

interface PluginClient {
  ws: WebSocket
  received: string[]
  closed: Promise<{ code: number; reason: string }>
}

function plugin(
  url: string,
  headers: Record<string, string> = { 'X-Plugin-Secret': PLUGIN_SECRET },
): PluginClient {
  const ws = new WebSocket(url, { headers })
  const received: string[] = []
  ws.on('message', (d: Buffer) => received.push(d.toString('utf8')))
  ws.on('error', () => {})
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  return { ws, received, closed }
}

const opened = (ws: WebSocket): Promise<void> =>
  new Promise((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })

const frame = (i: number, character = 'Larsson'): string =>
  JSON.stringify({ type: 'telemetry', character_name: character, kills: i, kills_per_hour: `${i}.5` })

describe('inline tee proxy', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  async function setup(o: {
    primary?: WsSink
    shadowUrl: string
    maxBufferedBytes?: number
    maxQueue?: number
  }) {
    const primary =
      o.primary ??
      new WsSink({ secret: PLUGIN_SECRET, echo: (f) => JSON.stringify({ ack: JSON.parse(f).kills }) })
    const primaryUrl = await primary.listen()
    cleanups.push(() => primary.close())
    const mirror = new ShadowMirror({
      url: o.shadowUrl,
      secret: SHADOW_SECRET,
      logger,
      maxBufferedBytes: o.maxBufferedBytes,
      maxQueue: o.maxQueue ?? 1000,
    })
    cleanups.push(() => mirror.shutdown())
    const proxy: InlineProxy = buildInlineProxy({ primaryUrl, mirror, clock: { now: Date.now }, logger })
    const base = (await proxy.listen()).replace('http', 'ws')
    cleanups.push(() => proxy.close())
    return { primary, mirror, proxy, url: `${base}/ws/position` }
  }

  it('forwards both ways unchanged and in order, passes auth through, and copies to the shadow', async () => {
    const shadow = new WsSink({ secret: SHADOW_SECRET })
    const shadowUrl = `${await shadow.listen()}/ws/position`
    cleanups.push(() => shadow.close())
    const { primary, url } = await setup({ shadowUrl })
    const a = plugin(url)
    const b = plugin(`${url}?secret=${PLUGIN_SECRET}`, {})
    await Promise.all([opened(a.ws), opened(b.ws)])
    const sent: string[] = []
    for (let i = 0; i < 200; i++) {
      const f = frame(i, i % 2 === 0 ? 'Larsson' : 'Brim Ironfist')
      sent.push(f)
      ;(i % 2 === 0 ? a : b).ws.send(f)
    }
    await waitFor('acks back to both plugins', () => a.received.length + b.received.length === 200)
    await waitFor('copies at the shadow', () => shadow.allFrames().length === 200)
    const atPrimary = primary.connections.map((c) => c.frames)
    expect(atPrimary).toEqual([sent.filter((_, i) => i % 2 === 0), sent.filter((_, i) => i % 2 === 1)])
    expect(primary.connections[0]?.headers['x-plugin-secret']).toBe(PLUGIN_SECRET)
    expect(primary.connections[1]?.url).toBe(`/ws/position?secret=${PLUGIN_SECRET}`)
    expect(a.received).toEqual(
      sent.filter((_, i) => i % 2 === 0).map((f) => JSON.stringify({ ack: JSON.parse(f).kills })),
    )
    const shadowByCharacter = shadow.connections.map((c) => c.frames)
    expect(shadowByCharacter).toEqual(atPrimary)
    expect(shadow.connections.every((c) => c.headers['x-plugin-secret'] === SHADOW_SECRET)).toBe(true)
    a.ws.close(1000)
    await waitFor(
      'disconnect mirrored to primary and shadow',
      () => primary.connections[0]?.closeCode === 1000 && shadow.connections[0]?.closeCode === 1000,
    )
  })

  for (const kind of ['down', 'slow', 'refusing'] as const) {
    it(`leaves the primary path whole when the shadow is ${kind}`, async () => {
      let shadowUrl: string
      let shadow: WsSink | undefined
      if (kind === 'down') {
        shadowUrl = `ws://127.0.0.1:${await freePort()}/ws/position`
      } else {
        shadow = new WsSink(kind === 'slow' ? { stall: true } : { secret: 'something-else' })
        shadowUrl = `${await shadow.listen()}/ws/position`
        cleanups.push(() => shadow?.close())
      }
      const { primary, mirror, url } = await setup({ shadowUrl, maxBufferedBytes: 64 * 1024, maxQueue: 50 })
      const p = plugin(url)
      await opened(p.ws)
      const padding = 'x'.repeat(kind === 'slow' ? 16 * 1024 : 10)
      const sent: string[] = []
      for (let i = 0; i < 1000; i++) {
        const f = JSON.stringify({ type: 'chat', character_name: 'Larsson', text: padding, i })
        sent.push(f)
        p.ws.send(f)
      }
      await waitFor('every frame at the primary', () => primary.allFrames().length === 1000, 30_000)
      expect(primary.allFrames()).toEqual(sent)
      await waitFor('every ack at the plugin', () => p.received.length === 1000, 30_000)
      const c = mirror.counters
      expect(c.frames_in).toBe(1000)
      // Forwarded, dropped by reason or still pending: never lost without a counter.
      expect(unaccountedFrames(c)).toBe(0)
      if (kind === 'down') expect(c.dropped_overflow).toBeGreaterThan(0)
      if (kind === 'slow') expect(c.dropped_slow).toBeGreaterThan(0)
      if (kind === 'refusing') {
        await waitFor('the refusal to be counted', () => mirror.counters.shadow_refused > 0)
        expect(c.frames_forwarded + c.dropped_overflow).toBeLessThanOrEqual(1000)
      }
      mirror.shutdown()
      await waitFor('the shut links to settle their frames', () => mirror.counters.pending === 0)
      expect(unaccountedFrames(c)).toBe(0)
      if (kind === 'down') expect(c.frames_forwarded).toBe(0)
    })
  }

  it('proxies only the plugin endpoint: a browser path is refused, never mirrored as a plugin', async () => {
    const shadow = new WsSink()
    const { url } = await setup({ shadowUrl: `${await shadow.listen()}/ws/position` })
    cleanups.push(() => shadow.close())
    const p = plugin(url.replace('/ws/position', '/ws/live'))
    const status = await new Promise<number>((resolve) =>
      p.ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)),
    )
    expect(status).toBe(404)
    expect(shadow.connections).toHaveLength(0)
  })

  it('mirrors a primary that refuses the handshake', async () => {
    const shadow = new WsSink()
    const { url } = await setup({
      primary: new WsSink({ refuseHandshake: 403 }),
      shadowUrl: `${await shadow.listen()}/ws/position`,
    })
    cleanups.push(() => shadow.close())
    const p = plugin(url)
    const status = await new Promise<number>((resolve) =>
      p.ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)),
    )
    expect(status).toBe(403)
    expect(shadow.connections).toHaveLength(0)
  })

  it('mirrors a primary that refuses the secret after accepting (close 1008)', async () => {
    const shadow = new WsSink()
    const { url } = await setup({
      primary: new WsSink({ secret: 'not-this' }),
      shadowUrl: `${await shadow.listen()}/ws/position`,
    })
    cleanups.push(() => shadow.close())
    const p = plugin(url)
    const closed = await p.closed
    expect(closed.code).toBe(1008)
    expect(closed.reason).toBe('invalid plugin secret')
  })

  it('mirrors a primary that drops the plugin, and answers 502 when it is unreachable', async () => {
    const shadow = new WsSink()
    const shadowUrl = `${await shadow.listen()}/ws/position`
    cleanups.push(() => shadow.close())
    const { url } = await setup({ primary: new WsSink({ dropAfter: 3 }), shadowUrl })
    const p = plugin(url)
    await opened(p.ws)
    for (let i = 0; i < 5; i++) p.ws.send(frame(i))
    expect((await p.closed).code).toBe(1006)

    const unreachable = buildInlineProxy({
      primaryUrl: `ws://127.0.0.1:${await freePort()}`,
      clock: { now: Date.now },
      logger,
    })
    const base = (await unreachable.listen()).replace('http', 'ws')
    cleanups.push(() => unreachable.close())
    const q = plugin(`${base}/ws/position`)
    const status = await new Promise<number>((resolve) =>
      q.ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)),
    )
    expect(status).toBe(502)
  })
})

describe('inline tee proxy flow control', () => {
  it('passes a stalled primary back to the plugin instead of buffering without bound', async () => {
    const primary = new WsSink({ stall: true })
    const primaryUrl = await primary.listen()
    const proxy = buildInlineProxy({ primaryUrl, clock: { now: Date.now }, logger })
    const url = `${(await proxy.listen()).replace('http', 'ws')}/ws/position`
    try {
      const p = plugin(url)
      await opened(p.ws)
      const chunk = JSON.stringify({ type: 'chat', character_name: 'Larsson', text: 'y'.repeat(64 * 1024) })
      for (let i = 0; i < 400; i++) p.ws.send(chunk)
      await waitFor('the proxy to pause the plugin', () => proxy.counters.backpressure_pauses > 0)
      // 25 MiB sent: once the proxy stops reading, the excess waits in the plugin's own buffer.
      await waitFor('back-pressure to reach the plugin', () => p.ws.bufferedAmount > 0)
      expect(proxy.counters.frames_to_primary).toBeLessThan(400)
      p.ws.terminate()
    } finally {
      await proxy.close()
      await primary.close()
    }
  })
})
