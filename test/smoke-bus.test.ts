import { afterAll, expect, it } from 'vitest'
import { buildTracker } from '../src/tracker/build-tracker.ts'
import { createTestDatabase } from './support/db.ts'
import { connectBrowser, connectPlugin, getJson, SECRET, telemetry } from './support/tracker.ts'

it('smoke', async () => {
  const db = await createTestDatabase()
  const name = `t${Date.now()}`
  const mk = () => buildTracker({ databaseUrl: db.url, sharedSecret: SECRET, skipSchemaInit: true, natsUrl: 'nats://127.0.0.1:4222', natsName: name })
  const a = await mk(); const b = await mk()
  const ua = (await a.listen(0)).replace('http', 'ws'); const ub = (await b.listen(0)).replace('http', 'ws')
  const br = await connectBrowser(ub)
  const p = await connectPlugin(ua)
  p.send(JSON.stringify(telemetry('Alf', { kills: 5 })))
  p.send(JSON.stringify({ type: 'quest', character_name: 'Alf', quest_name: 'Q1', countdown: '1h' }))
  const t0 = Date.now()
  const m = await br.waitFor((m) => m.character_name === 'Alf')
  console.log('got on B', Date.now() - t0, m)
  await br.waitFor((m) => m.type === 'quest')
  console.log(await getJson(ub.replace('ws', 'http') + '/quest-status'))
  await new Promise((r) => setTimeout(r, 1500))
  const { rows } = await (await import('./support/db.ts')).sql(db.url, 'SELECT count(*)::int n FROM telemetry_events')
  console.log(rows, a.metrics().bus, b.metrics().bus)
  p.close(); br.ws.close()
  await a.close(); await b.close(); await db.drop()
}, 30000)
