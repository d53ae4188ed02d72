import { describe, expect, it } from 'vitest'
import { PyFloat, parsePyJson, stringifyPyJson } from '../protocol/py-json.ts'
import { addTrees, type StatsTree, toStatsTree } from './combat.ts'

const tree = (json: string): StatsTree => toStatsTree(parsePyJson(json))
const text = (t: StatsTree): string => stringifyPyJson(t)

describe('combat trees', () => {
  it('sums leaf-wise through nested objects, missing leaves as zero', () => {
    const a = tree('{"kills": 2, "damage": {"fire": 10, "cold": 1}}')
    const b = tree('{"kills": 3, "damage": {"fire": 5, "acid": 7}, "monsters": {"drudge": {"hits": 4}}}')
    expect(text(addTrees(a, b))).toBe(
      '{"kills":5,"damage":{"fire":15,"cold":1,"acid":7},"monsters":{"drudge":{"hits":4}}}',
    )
  })

  it('subtracts to give the difference a new snapshot adds', () => {
    expect(text(addTrees(tree('{"kills": 5, "d": {"f": 9}}'), tree('{"kills": 3, "d": {"f": 4}}'), -1))).toBe(
      '{"kills":2,"d":{"f":5}}',
    )
  })

  it('drops values that cannot be summed', () => {
    expect(text(tree('{"a": 1, "b": "x", "c": [1], "d": {"e": 2, "f": null}, "g": true}'))).toBe(
      '{"a":1,"d":{"e":2}}',
    )
  })

  it('follows Python: int with int stays an exact int, a float anywhere makes a float', () => {
    const sum = addTrees(
      tree('{"i": 9007199254740993, "m": 105, "f": 0.1}'),
      tree('{"i": 2, "m": 0.0, "f": 0.2}'),
    )
    expect(sum.i).toBe(9007199254740995n)
    expect(sum.m).toEqual(new PyFloat(105))
    expect(text(sum)).toBe('{"i":9007199254740995,"m":105.0,"f":0.30000000000000004}')
  })
})
