import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  closeCode,
  connectBrowser,
  connectPlugin,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
  waitForMetrics,
} from './support/tracker.ts'

let t: RunningTracker
beforeAll(async () => {
  t = await startTracker({ pluginSideEffects: true })
})
afterAll(() => t.close())

describe('/ws/live', () => {
  it('sends telemetry typeless and every other frame as received', async () => {
    const browser = await connectBrowser(t.wsUrl)
    const ws = await connectPlugin(t.wsUrl)
    const chat = '{"type":"chat","character_name":"Talker","text":"hello","color":5}'
    await sendFrames(t.url, ws, [telemetry('Talker', { kills: 42 }), chat])
    const tele = await browser.waitFor((m) => m.character_name === 'Talker' && m.kills === 42)
    expect(tele.type).toBeUndefined()
    expect(tele.kills_per_hour).toBe('340.5') // as received: coercion is for storage and /live
    const got = await browser.waitFor((m) => m.type === 'chat')
    expect(got).toEqual(JSON.parse(chat))
    ws.close()
    browser.ws.close()
  })

  it('after subscribe, sends only the listed types ("telemetry" selects the typeless telemetry)', async () => {
    const rares = await connectBrowser(t.wsUrl)
    const tele = await connectBrowser(t.wsUrl)
    // A browser's messages are handled in order: once the dungeon-map reply is back, so is the subscribe.
    const subscribe = async (b: typeof rares, types: string[]) => {
      b.ws.send(JSON.stringify({ type: 'subscribe', message_types: types }))
      b.ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: 'sync' }))
      await b.waitFor((m) => m.landblock === 'sync')
      b.messages.length = 0
    }
    await subscribe(rares, ['rare', 'chat'])
    await subscribe(tele, ['telemetry'])
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      telemetry('Sub'),
      { type: 'vitals', character_name: 'Sub', vitae: 0 },
      { type: 'rare', character_name: 'Sub', name: 'Gem' },
      { type: 'chat', character_name: 'Sub', text: 'end' },
    ])
    await rares.waitFor((m) => m.type === 'chat' && m.text === 'end')
    await tele.waitFor((m) => m.character_name === 'Sub')
    expect(rares.messages.map((m) => m.type)).toEqual(['rare', 'chat'])
    // Let anything wrongly sent arrive before checking the other browser saw telemetry only.
    await sendFrames(t.url, ws, [telemetry('Sub', { kills: 99 })])
    await tele.waitFor((m) => m.kills === 99)
    expect(tele.messages.every((m) => m.type === undefined && m.character_name === 'Sub')).toBe(true)
    ws.close()
    rares.ws.close()
    tele.ws.close()
  })

  it('routes a command to the character plugin, or answers command_error when none is connected', async () => {
    const plugin = await connectPlugin(t.wsUrl)
    const received: string[] = []
    plugin.on('message', (d) => received.push(String(d)))
    await sendFrames(t.url, plugin, [telemetry('Larsson')])
    const browser = await connectBrowser(t.wsUrl)
    const command = JSON.stringify({ player_name: 'Larsson', command: '/radar start' })
    browser.ws.send(command)
    await new Promise<void>((resolve) => plugin.once('message', () => resolve()))
    expect(received).toEqual([command])

    browser.ws.send(JSON.stringify({ player_name: 'Ghost', command: '/radar start' }))
    expect(await browser.waitFor((m) => m.type === 'command_error')).toEqual({
      type: 'command_error',
      player_name: 'Ghost',
      error: 'not_connected',
    })
    plugin.close()
    browser.ws.close()
  })

  it('keeps a reconnected plugin registered when its old socket closes late', async () => {
    const old = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, old, [telemetry('Reconnector')])
    const fresh = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, fresh, [telemetry('Reconnector')])
    old.close()
    await closeCode(old)
    const got = new Promise<string>((resolve) => fresh.once('message', (d) => resolve(String(d))))
    const browser = await connectBrowser(t.wsUrl)
    const command = JSON.stringify({ player_name: 'Reconnector', command: '/vt start' })
    browser.ws.send(command)
    expect(await got).toBe(command)
    fresh.close()
    browser.ws.close()
  })

  it('relays share_* frames to the other plugins only', async () => {
    const a = await connectPlugin(t.wsUrl)
    const b = await connectPlugin(t.wsUrl)
    const toA: string[] = []
    a.on('message', (d) => toA.push(String(d)))
    await sendFrames(t.url, a, [telemetry('Sharer A')])
    await sendFrames(t.url, b, [telemetry('Sharer B')])
    const share = JSON.stringify({ type: 'share_vitals', character_name: 'Sharer B', health: 10 })
    const got = new Promise<string>((resolve) => a.once('message', (d) => resolve(String(d))))
    b.on('message', () => expect.fail('the sender must not get its own share back'))
    await sendFrames(t.url, b, [share])
    expect(await got).toBe(share)
    a.close()
    b.close()
  })

  it('answers request_dungeon_map from the cache or with not_found', async () => {
    const ws = await connectPlugin(t.wsUrl)
    const map = { type: 'dungeon_map', character_name: 'Delver', landblock: '0x1234', tiles: [1, 2] }
    await sendFrames(t.url, ws, [map])
    const browser = await connectBrowser(t.wsUrl)
    browser.ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: '0x1234' }))
    expect(await browser.waitFor((m) => m.type === 'dungeon_map')).toEqual(map)
    browser.ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: '0xdead' }))
    expect(await browser.waitFor((m) => m.error === 'not_found')).toEqual({
      type: 'dungeon_map',
      landblock: '0xdead',
      error: 'not_found',
    })
    ws.close()
    browser.ws.close()
  })

  it('ignores malformed messages without throwing, and keeps sending to the browser afterwards', async () => {
    const browser = await connectBrowser(t.wsUrl)
    const closed = closeCode(browser.ws)
    const hostile = [
      '{"type":"subscribe","message_types":[{"toString":1}]}',
      '{"type":"subscribe","message_types":"rare"}',
      '{"type":"subscribe","message_types":{"0":"rare","length":1}}',
      '{"type":"subscribe","message_types":["rare",7]}',
      '{"type":"subscribe"}',
      '{"player_name":{"toString":1},"command":"x"}',
      '{"player_name":["Larsson"],"command":"x"}',
      '{"player_name":"__proto__","command":{"toString":1}}',
      '{"player_name":null,"command":null}',
      '{"type":"toString","player_name":7}',
      '"just a string"',
      '[1,2]',
      'null',
      '{broken',
    ]
    for (const text of hostile) browser.ws.send(text)
    // A non-string landblock is answered not_found, with no landblock echoed back.
    browser.ws.send('{"type":"request_dungeon_map","landblock":{"toString":1}}')
    browser.ws.send('{"type":"request_dungeon_map","landblock":["0x1234"]}')
    browser.ws.send('{"type":"request_dungeon_map"}')
    // Messages are handled in order: once this reply is back, every message above was handled.
    browser.ws.send(JSON.stringify({ type: 'request_dungeon_map', landblock: 'after-hostile' }))
    await browser.waitFor((m) => m.landblock === 'after-hostile')
    expect(
      browser.messages.filter((m) => m.type === 'dungeon_map' && m.landblock !== 'after-hostile'),
    ).toEqual(Array(3).fill({ type: 'dungeon_map', landblock: null, error: 'not_found' }))
    expect(browser.messages.some((m) => m.type === 'command_error')).toBe(false)
    // None of the bad subscribes narrowed the browser's subscription: it still gets everything.
    const ws = await connectPlugin(t.wsUrl)
    await sendFrames(t.url, ws, [
      telemetry('AfterHostile'),
      { type: 'vitals', character_name: 'AfterHostile' },
    ])
    await browser.waitFor((m) => m.character_name === 'AfterHostile' && m.type === undefined)
    await browser.waitFor((m) => m.character_name === 'AfterHostile' && m.type === 'vitals')
    const m = await waitForMetrics(t.url, () => true)
    expect(m.handler_errors).toEqual({})
    ws.close()
    browser.ws.close()
    expect(await closed).toBe(1005) // closed by the client, not by the tracker
  })

  it('refuses a browser that is neither internal nor signed in', async () => {
    const browser = connectBrowser(t.wsUrl, { 'X-Forwarded-For': '203.0.113.7' })
    const b = await browser
    expect(await closeCode(b.ws)).toBe(1008)
  })
})

describe('a slow browser', () => {
  it('is cut off with 1013, which it sees once it reads again, while a fast one keeps receiving everything', async () => {
    const small = await startTracker({
      browserSoftLimitBytes: 64 * 1024,
      browserHardLimitBytes: 512 * 1024,
      browserGraceMs: 100,
    })
    try {
      const fast = await connectBrowser(small.wsUrl)
      const slow = await connectBrowser(small.wsUrl)
      slow.ws.pause() // stops reading: the kernel buffers fill, then the tracker's backlog grows
      const slowClosed = closeCode(slow.ws)
      const ws = await connectPlugin(small.wsUrl)
      const text = 'x'.repeat(16 * 1024)
      const total = 1_000 // 16 MB: far past what loopback buffers absorb
      // Paced so the fast browser (in this same process) keeps up; the slow one reads nothing.
      for (let i = 0; i < total; i++) {
        ws.send(JSON.stringify({ type: 'chat', character_name: 'Flood', text, i }))
        if (i % 20 === 19) await fast.waitFor((m) => m.i === i)
      }
      await fast.waitFor((m) => m.i === total - 1)
      expect(fast.messages.filter((m) => m.type === 'chat').map((m) => m.i)).toEqual([...Array(total).keys()])
      const m = await waitForMetrics(small.url, (x) => x.browser_slow_disconnects === 1)
      expect(m.browsers).toBe(1)
      // A stalled reader comes back later than the tracker once waited (1 s, then terminate: 1006).
      // The close frame waits behind at most the low-water mark, so it arrives once reading resumes.
      await new Promise((r) => setTimeout(r, 1_500))
      slow.ws.resume()
      expect(await slowClosed).toBe(1013)
      ws.close()
      fast.ws.close()
    } finally {
      await small.close()
    }
  })
})
