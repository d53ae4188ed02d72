import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectPlugin,
  type RunningTracker,
  sendFrames,
  startTracker,
  waitForMetrics,
} from './support/tracker.ts'

const received: { path: string; body: unknown }[] = []
const inventoryService = createServer(async (req: IncomingMessage, res) => {
  let body = ''
  for await (const chunk of req) body += chunk
  received.push({ path: req.url ?? '', body: JSON.parse(body) })
  res.end('{}')
})

let t: RunningTracker
beforeAll(async () => {
  await new Promise<void>((r) => inventoryService.listen(0, '127.0.0.1', r))
  const { port } = inventoryService.address() as AddressInfo
  t = await startTracker({ inventoryServiceUrl: `http://127.0.0.1:${port}`, inventoryWritesEnabled: true })
})
afterAll(async () => {
  await t.close()
  inventoryService.close()
})

describe('inventory forwarding (CONTRACT §7)', () => {
  it('posts full inventories (and the legacy alias) and deltas to the inventory service', async () => {
    const ws = await connectPlugin(t.wsUrl)
    const full = { type: 'full_inventory', character_name: 'Packrat', item_count: 1, items: [{ id: 1 }] }
    const alias = { type: 'inventory', character_name: 'Packrat', item_count: 0, items: [] }
    const delta = { type: 'inventory_delta', character_name: 'Packrat', action: 'remove', item_id: 1 }
    await sendFrames(t.url, ws, [full, alias, delta])
    await waitForMetrics(t.url, (m) => m.inventory_forwarded === 3)
    expect(received.map((r) => r.path).sort()).toEqual([
      '/inventory-delta',
      '/process-inventory',
      '/process-inventory',
    ])
    expect(received.find((r) => r.path === '/inventory-delta')?.body).toEqual(delta)
    ws.close()
  })

  it('forwards nothing to a configured service unless writes are enabled (a shadow), counting it', async () => {
    const { port } = inventoryService.address() as AddressInfo
    const shadow = await startTracker({ inventoryServiceUrl: `http://127.0.0.1:${port}` })
    try {
      const before = received.length
      const ws = await connectPlugin(shadow.wsUrl)
      await sendFrames(shadow.url, ws, [{ type: 'full_inventory', character_name: 'Shadowed', items: [] }])
      const m = await waitForMetrics(shadow.url, (x) => x.suppressed.inventory_forward === 1)
      expect(m.inventory_forwarded).toBe(0)
      // The decision is made as the frame is accepted: nothing was queued for the service.
      expect(received.length).toBe(before)
      ws.close()
    } finally {
      await shadow.close()
    }
  })

  it('forwards nothing from a shadow without INVENTORY_SERVICE_URL, counting what it would have sent', async () => {
    const shadow = await startTracker()
    try {
      const ws = await connectPlugin(shadow.wsUrl)
      await sendFrames(shadow.url, ws, [{ type: 'full_inventory', character_name: 'Quiet', items: [] }])
      const m = await waitForMetrics(shadow.url, (x) => x.suppressed.inventory_forward === 1)
      expect(m.inventory_forwarded).toBe(0)
      ws.close()
    } finally {
      await shadow.close()
    }
  })
})
