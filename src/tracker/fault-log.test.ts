import { Writable } from 'node:stream'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { FaultLog } from './fault-log.ts'
import { counterRecord } from './metrics.ts'

describe('FaultLog', () => {
  it('keeps a throwing callback from escaping, counts every fault and logs once per site per interval', () => {
    const lines: Record<string, unknown>[] = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    })
    const counts = counterRecord()
    const faults = new FaultLog(counts, pino(sink))
    const handler = faults.guard('plugin_frame', (n: number) => {
      if (n % 2 === 0) throw new TypeError(`Cannot convert object to primitive value ${n}`)
    })
    for (let n = 0; n < 100; n++) expect(() => handler(n)).not.toThrow()
    faults.guard('fanout', () => {
      throw new RangeError('Maximum call stack size exceeded')
    })()
    expect({ ...counts }).toEqual({ plugin_frame: 50, fanout: 1 })
    expect(lines.map((l) => l.site)).toEqual(['plugin_frame', 'fanout'])
    expect(lines[0]).toMatchObject({ component: 'faults', faults: 1, err: { type: 'TypeError' } })
  })
})
