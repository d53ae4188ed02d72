import { describe, expect, it } from 'vitest'
import { bumpBounded, MAX_COUNTED_TYPES } from './metrics.ts'

describe('bumpBounded', () => {
  it('folds keys past the bound into (other), still counting known ones', () => {
    const r: Record<string, number> = {}
    for (let i = 0; i < MAX_COUNTED_TYPES + 50; i++) bumpBounded(r, `type_${i}`)
    bumpBounded(r, 'type_0')
    expect(Object.keys(r)).toHaveLength(MAX_COUNTED_TYPES + 1)
    expect(r['(other)']).toBe(50)
    expect(r.type_0).toBe(2)
  })
})
