import { describe, expect, it } from 'vitest'
import { addTrees, toStatsTree } from './combat.ts'

describe('combat trees', () => {
  it('sums leaf-wise through nested objects, missing leaves as zero', () => {
    const a = { kills: 2, damage: { fire: 10, cold: 1 } }
    const b = { kills: 3, damage: { fire: 5, acid: 7 }, monsters: { drudge: { hits: 4 } } }
    expect(addTrees(a, b)).toEqual({
      kills: 5,
      damage: { fire: 15, cold: 1, acid: 7 },
      monsters: { drudge: { hits: 4 } },
    })
  })

  it('subtracts to give the difference a new snapshot adds', () => {
    expect(addTrees({ kills: 5, d: { f: 9 } }, { kills: 3, d: { f: 4 } }, -1)).toEqual({
      kills: 2,
      d: { f: 5 },
    })
  })

  it('drops values that cannot be summed', () => {
    expect(toStatsTree({ a: 1, b: 'x', c: [1], d: { e: 2, f: null } })).toEqual({ a: 1, d: { e: 2 } })
  })
})
