import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import {
  connectBrowser,
  connectPlugin,
  getJson,
  type RunningTracker,
  sendFrames,
  startTracker,
  telemetry,
  waitForMetrics,
} from './support/tracker.ts'

// CONTRACT.md §10: a shadow given real targets for every side effect (the live service's
// environment) writes to none of them. One receiver stands in for Discord and the inventory service.
const requests: { method: string; url: string }[] = []
const receiver = createServer((req: IncomingMessage, res) => {
  requests.push({ method: req.method ?? '', url: req.url ?? '' })
  req.resume()
  res.setHeader('content-type', 'application/json')
  res.end('{"ok":true}')
})

let t: RunningTracker
let target: string
beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  target = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  t = await startTracker({ discordWebhookUrl: `${target}/api/webhooks/1/token`, inventoryServiceUrl: target })
})
afterAll(async () => {
  await t.close()
  receiver.close()
})

describe('a shadow with every side effect pointed at a real target', () => {
  it('posts nothing anywhere, sends nothing to plugins, and counts what it would have done', async () => {
    const plugin = await connectPlugin(t.wsUrl)
    const peer = await connectPlugin(t.wsUrl)
    const toPlugins: string[] = []
    for (const ws of [plugin, peer]) ws.on('message', (d: WebSocket.RawData) => toPlugins.push(String(d)))
    await sendFrames(t.url, peer, [telemetry('Peer')])
    await sendFrames(t.url, plugin, [
      telemetry('Larsson'),
      { type: 'vitals', character_name: 'Larsson', vitae: 0 },
      { type: 'vitals', character_name: 'Larsson', vitae: 5 },
      { type: 'full_inventory', character_name: 'Larsson', item_count: 0, items: [] },
      { type: 'inventory_delta', character_name: 'Larsson', action: 'remove', item_id: 1 },
      { type: 'share_vitals', character_name: 'Larsson', health: 10 },
    ])
    const browser = await connectBrowser(t.wsUrl)
    browser.ws.send(JSON.stringify({ player_name: 'Larsson', command: '/radar start' }))
    const write = await fetch(`${t.url}/inv/items/1`, { method: 'DELETE' })
    expect(write.status).toBe(503)

    const m = await waitForMetrics(t.url, (x) => x.suppressed.plugin_command === 1)
    expect(m.suppressed).toMatchObject({ discord_alert: 1, inventory_forward: 2, share_relay: 1 })
    expect(m.alerts.suppressed_by_kind.death).toBe(1)
    expect(m.inventory_proxy.writes_refused).toBe(1)
    // Reads are not side effects: the inventory service is read through the proxy as on the primary.
    expect((await getJson(`${t.url}/inventory/Larsson`)).status).toBe(200)

    expect(requests).toEqual([{ method: 'GET', url: '/inventory/Larsson' }])
    expect(toPlugins).toEqual([])
    for (const ws of [plugin, peer, browser.ws]) ws.close()
  })
})
