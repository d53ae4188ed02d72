import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { SHUTDOWN_CLOSE_MS } from '../src/tracker/websockets.ts'
import { createTestDatabase } from './support/db.ts'
import {
  closeCode,
  connectBrowser,
  connectPlugin,
  SECRET,
  startTracker,
  telemetry,
} from './support/tracker.ts'

/** RFC 6455 §7.4.1: the server is going away. */
const GOING_AWAY = 1001

describe('shutdown', () => {
  it('sends plugins and browsers 1001 Going Away when the tracker closes (was 1006)', async () => {
    const t = await startTracker()
    const plugin = await connectPlugin(t.wsUrl)
    const browser = await connectBrowser(t.wsUrl)
    plugin.send(JSON.stringify(telemetry('Leaving')))
    await browser.waitFor((m) => m.character_name === 'Leaving')
    const started = Date.now()
    const closing = t.tracker.close()
    expect(await closeCode(plugin)).toBe(GOING_AWAY)
    expect(await closeCode(browser.ws)).toBe(GOING_AWAY)
    await closing
    // Clients that answer the closing handshake are not kept waiting for the 1 s bound (the
    // tracker's own close, not the test database's drop, which a loaded machine can slow).
    expect(Date.now() - started).toBeLessThan(SHUTDOWN_CLOSE_MS)
    await t.database.drop()
  })

  it('terminates a client that never answers the closing handshake once the 1 s bound has passed', async () => {
    const t = await startTracker()
    const stuck = await connectBrowser(t.wsUrl)
    stuck.ws.pause() // reads nothing, so it never sees the close frame nor answers it
    const started = Date.now()
    await t.close()
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(SHUTDOWN_CLOSE_MS - 50)
    expect(took).toBeLessThan(SHUTDOWN_CLOSE_MS + 2_000)
    stuck.ws.resume()
    // It still gets the tracker's 1001 from its buffers, then finds the connection gone.
    expect(await closeCode(stuck.ws)).toBe(GOING_AWAY)
  })

  it('serve: SIGTERM sends a connected plugin 1001 and the process exits 0', async () => {
    const database = await createTestDatabase()
    let child: ChildProcess | undefined
    try {
      child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], {
        env: {
          ...process.env,
          SHARED_SECRET: SECRET,
          DATABASE_URL: database.url,
          SKIP_SCHEMA_INIT: 'true',
          PORT: '0',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
      let url: string | undefined
      for await (const line of createInterface({ input: child.stdout! })) {
        const record = JSON.parse(line) as { msg?: string; url?: string }
        if (record.msg === 'tracker listening') {
          url = record.url
          break
        }
      }
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      child.stdout!.resume() // keep draining its log so it never blocks on a full pipe
      const plugin = await connectPlugin(url!.replace('http', 'ws'))
      child.kill('SIGTERM')
      expect(await closeCode(plugin)).toBe(GOING_AWAY)
      expect(await exited).toEqual([0, null])
    } finally {
      if (child?.exitCode === null) child.kill('SIGKILL')
      await database.drop()
    }
  })
})
