import { describe, expect, it } from 'vitest'
import { bumpBounded, counterRecord, MAX_COUNTED_TYPES } from './metrics.ts'

describe('bumpBounded', () => {
  it('folds keys past the bound into (other), still counting known ones', () => {
    const r = counterRecord()
    for (let i = 0; i < MAX_COUNTED_TYPES + 50; i++) bumpBounded(r, `type_${i}`)
    bumpBounded(r, 'type_0')
    expect(Object.keys(r)).toHaveLength(MAX_COUNTED_TYPES + 1)
    expect(r['(other)']).toBe(50)
    expect(r.type_0).toBe(2)
  })
})

describe('counter records', () => {
  it('count frame types named after Object.prototype members as plain numbers', () => {
    const r = counterRecord()
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      bumpBounded(r, key)
      bumpBounded(r, key)
    }
    // What /metrics.json serves: every key an own number, none of them a function's source text.
    expect(Object.entries(JSON.parse(JSON.stringify(r)) as object).sort()).toEqual([
      ['__proto__', 2],
      ['constructor', 2],
      ['hasOwnProperty', 2],
      ['toString', 2],
    ])
  })
})
