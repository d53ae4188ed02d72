import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import type { BrowserHub } from '../src/tracker/browser-hub.ts'
import { FaultLog } from '../src/tracker/fault-log.ts'
import type { Ingest } from '../src/tracker/ingest.ts'
import type { LiveState } from '../src/tracker/live-state.ts'
import { newIngestCounters } from '../src/tracker/metrics.ts'
import { attachWebSockets, type WebSockets } from '../src/tracker/websockets.ts'
import { closeCode, connectBrowser, connectPlugin, SECRET } from './support/tracker.ts'

const boom = () => {
  throw new Error('boom')
}

/** The WebSocket endpoints alone, on a bare HTTP server, with `overrides` standing in for the tracker's parts. */
async function endpoints(overrides: { hub?: Partial<BrowserHub>; ingest?: Partial<Ingest> }) {
  const counters = newIngestCounters()
  const logger = pino({ level: 'silent' })
  const hub = {
    add: (ws: WebSocket) => ({ ws }),
    subscribe: () => {},
    reply: (client: { ws: WebSocket }, message: unknown) => client.ws.send(JSON.stringify(message)),
    closeAll: () => {},
    ...overrides.hub,
  }
  const ingest = { attach: () => {}, sendCommand: async () => false, ...overrides.ingest }
  const server: Server = createServer()
  const sockets: WebSockets = attachWebSockets(server, {
    logger,
    ingest: ingest as unknown as Ingest,
    hub: hub as unknown as BrowserHub,
    live: { dungeonMaps: new Map() } as unknown as LiveState,
    counters,
    faults: new FaultLog(counters.handler_errors, logger),
    secrets: { current: SECRET, legacy: undefined },
    readOnly: false,
    maxFrameBytes: 1 << 20,
    authorizeBrowser: async () => true,
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}`,
    faults: counters.handler_errors,
    async close() {
      await sockets.close()
      server.close()
    },
  }
}

describe('WebSocket callbacks never throw into ws or the HTTP server', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c()
  })
  const start = async (overrides: Parameters<typeof endpoints>[0]) => {
    const e = await endpoints(overrides)
    cleanups.push(e.close)
    return e
  }

  it('a browser message handler that throws is counted and the browser stays connected', async () => {
    const e = await start({ hub: { subscribe: boom } })
    const browser = await connectBrowser(e.wsUrl)
    browser.ws.send('{"type":"subscribe","message_types":["rare"]}')
    browser.ws.send('{"type":"subscribe","message_types":["chat"]}')
    browser.ws.send('{"type":"request_dungeon_map","landblock":"0x1"}')
    // Handled in order: once the reply is back, both subscribes were handled (and thrown in).
    await browser.waitFor((m) => m.type === 'dungeon_map')
    expect(e.faults).toEqual({ browser_message: 2 })
    expect(browser.ws.readyState).toBe(browser.ws.OPEN)
  })

  it('a browser accept that throws is counted and the socket closed with 1011', async () => {
    const e = await start({ hub: { add: boom } })
    const browser = await connectBrowser(e.wsUrl)
    expect(await closeCode(browser.ws)).toBe(1011)
    expect(e.faults).toEqual({ browser_accept: 1 })
  })

  it('a plugin accept that throws is counted and the socket closed with 1011', async () => {
    const e = await start({ ingest: { attach: boom } })
    const plugin = await connectPlugin(e.wsUrl)
    expect(await closeCode(plugin)).toBe(1011)
    expect(e.faults).toEqual({ plugin_accept: 1 })
  })

  it('an upgrade whose target cannot be parsed is counted and its connection dropped', async () => {
    const e = await start({})
    const conn = net.connect(e.port, '127.0.0.1')
    await once(conn, 'connect')
    conn.write(
      'GET http://[x/ws/live HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    conn.resume()
    await once(conn, 'close')
    expect(e.faults).toEqual({ ws_upgrade: 1 })
  })
})
