import { describe, expect, it } from 'vitest'
import { counterRecord } from './metrics.ts'
import { PrometheusExporter, readSnapshot } from './prometheus.ts'

const byName = (snapshot: Record<string, unknown>) => new Map(readSnapshot(snapshot).map((r) => [r.name, r]))

describe('readSnapshot: the naming rule', () => {
  it('numbers are counters with _total, levels are gauges, booleans 0/1, null and strings left out', () => {
    const r = byName({
      frames_received: 3,
      queue_total: 4,
      persist_pending: 2,
      process_rss_bytes: 10,
      browsers: 1,
      read_only: true,
      timescale: null,
      version: 'dev',
    })
    expect([...r.keys()].sort()).toEqual([
      'overlord_browsers',
      'overlord_frames_received_total',
      'overlord_persist_pending',
      'overlord_process_rss_bytes',
      'overlord_queue_total',
      'overlord_read_only',
    ])
    expect(r.get('overlord_frames_received_total')).toMatchObject({
      kind: 'counter',
      values: [[undefined, 3]],
    })
    expect(r.get('overlord_persist_pending')?.kind).toBe('gauge')
    expect(r.get('overlord_read_only')).toMatchObject({ kind: 'gauge', values: [[undefined, 1]] })
  })

  it('a map of numbers is one labelled family: the label after by_, from LABELS, or key', () => {
    const reasons = counterRecord()
    reasons.not_json = 2
    const r = byName({
      bad_by_reason: reasons,
      persist_rejected_by_reason: {},
      handler_errors: { 'hub.send': 1 },
      new_thing_by_colour: { red: 1 },
      plain_map: { a: 1 },
    })
    expect(r.get('overlord_frames_bad_by_reason_total')).toMatchObject({
      label: 'reason',
      values: [['not_json', 2]],
    })
    expect(r.get('overlord_persist_rejected_by_reason_total')).toMatchObject({ label: 'reason', values: [] })
    expect(r.get('overlord_handler_errors_total')?.label).toBe('site')
    expect(r.get('overlord_new_thing_by_colour_total')?.label).toBe('colour')
    expect(r.get('overlord_plain_map_total')?.label).toBe('key')
  })

  it('other objects are flattened into <key>_<child> by the same rules', () => {
    const r = byName({
      alerts: { delivering: false, posted: { death: 1 }, retries: 2, queued: 3, in_flight: 0, last: 'x' },
    })
    expect([...r.keys()].sort()).toEqual([
      'overlord_alerts_delivering',
      'overlord_alerts_in_flight',
      'overlord_alerts_posted_total',
      'overlord_alerts_queued',
      'overlord_alerts_retries_total',
    ])
  })
})

describe('PrometheusExporter', () => {
  it('exports a key added after the first scrape, and label values no plain object could hold', async () => {
    const source: Record<string, unknown> = { frames_received: 1 }
    const exporter = new PrometheusExporter(() => source)
    await exporter.scrape()
    const types = counterRecord()
    for (const [k, n] of [
      ['__proto__', 2],
      ['constructor', 3],
    ] as [string, number][])
      types[k] = n
    source.by_type = types
    source.inventory_forwarded = 7
    const text = await exporter.scrape()
    expect(text).toContain('overlord_inventory_forwarded_total 7')
    const json = await exporter.registry.getMetricsAsJSON()
    const byType = json.find((m) => m.name === 'overlord_frames_accepted_by_type_total')
    expect(byType?.type).toBe('counter')
    expect(byType?.values.map((v) => [v.labels.type, v.value])).toEqual([
      ['__proto__', 2],
      ['constructor', 3],
    ])
  })

  it('a name belongs to the first key that had it: a collision or a change of shape is left out, the scrape still answers', async () => {
    const source: Record<string, unknown> = { thing: 1, thing_total: 5 }
    const exporter = new PrometheusExporter(() => source)
    const first = await exporter.scrape()
    expect(first).toContain('overlord_thing_total 1')
    expect(first).not.toContain('overlord_thing_total 5')
    source.thing = { a: 1 }
    source.other = 2
    const second = await exporter.scrape()
    expect(second).toContain('# TYPE overlord_thing_total counter')
    expect(second).not.toMatch(/^overlord_thing_total[ {]/m)
    expect(second).toContain('overlord_other_total 2')
  })
})
