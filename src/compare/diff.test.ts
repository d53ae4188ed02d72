import { describe, expect, it } from 'vitest'
import { compareDocs } from './diff.ts'
import { normalize } from './normalize.ts'
import { matchesPattern, parseRules } from './rules.ts'

const rules = parseRules({
  defaults: { abs: 1e-6, rel: 0, toleranceMs: 0 },
  endpoints: {
    live: {
      keys: { 'body.players': ['character_name'] },
      ordered: ['body.players'],
      fields: { 'body.players[].timestamp': { toleranceMs: 500, reason: 'test: clocks apart' } },
    },
    portals: { keys: { 'body.portals': ['ns', 'ew'] } },
  },
})

const live = (players: Record<string, unknown>[]) => ({ status: 200, body: { players } })

function run(primary: unknown, shadow: unknown, endpoint = 'live') {
  const ep = rules.endpoints[endpoint]
  return compareDocs(normalize(primary, ep), normalize(shadow, ep), ep, rules)
}

const A = {
  character_name: 'A',
  kills: 10,
  kills_per_hour: 340.5,
  ew: 1.5,
  timestamp: '2026-11-22T08:10:02+00:00',
}
const B = {
  character_name: 'B',
  kills: 3,
  kills_per_hour: 12,
  ew: -2.25,
  timestamp: '2026-11-22T08:10:04+00:00',
}

describe('instant spelling', () => {
  const at = (timestamp: string) => live([{ ...A, timestamp }])
  const classes = (p: string, s: string) => run(at(p), at(s)).differences.map((d) => d.class)

  it('reports the same instant spelled another way as a format difference', () => {
    expect(classes('2026-11-22T08:10:02+00:00', '2026-11-22T08:10:02Z')).toEqual(['format'])
    expect(classes('2026-11-22T08:10:02+00:00', '2026-11-22T08:10:02.000000+00:00')).toEqual(['format'])
    expect(classes('2026-11-22T08:10:02.120000+00:00', '2026-11-22T08:10:02.12+00:00')).toEqual(['format'])
  })

  it('tolerates instants within tolerance in the same spelling, fraction or not', () => {
    expect(classes('2026-11-22T08:10:02+00:00', '2026-11-22T08:10:02.250000+00:00')).toEqual([])
    expect(run(at('2026-11-22T08:10:02+00:00'), at('2026-11-22T08:10:02.250000+00:00')).tolerated).toBe(1)
  })

  it('reports an instant beyond tolerance as a value difference, whatever its spelling', () => {
    expect(classes('2026-11-22T08:10:02+00:00', '2026-11-22T08:10:09Z')).toEqual(['value'])
  })
})

describe('compareDocs', () => {
  it('finds nothing between equal documents', () => {
    expect(run(live([A, B]), live([A, B])).differences).toEqual([])
  })

  it('classifies a player only the shadow lists as an extra entity', () => {
    const { differences } = run(live([A]), live([A, B]))
    expect(differences).toMatchObject([
      { class: 'extra_entity', path: 'body.players[B]', signature: 'body.players[]' },
    ])
  })

  it('classifies a player the shadow lacks as a missing entity', () => {
    const { differences } = run(live([A, B]), live([B]))
    expect(differences).toMatchObject([{ class: 'missing_entity', path: 'body.players[A]' }])
  })

  it('classifies kills_per_hour sent as a string as a type change', () => {
    const { differences } = run(live([A]), live([{ ...A, kills_per_hour: '340.5' }]))
    expect(differences).toMatchObject([
      { class: 'type_change', signature: 'body.players[].kills_per_hour', primary: 340.5, shadow: '340.5' },
    ])
  })

  it('classifies missing and extra fields', () => {
    const { kills: _dropped, ...withoutKills } = A
    const { differences } = run(live([A]), live([{ ...withoutKills, mem_mb: 12 }]))
    expect(differences.map((d) => [d.class, d.signature]).sort()).toEqual([
      ['extra_field', 'body.players[].mem_mb'],
      ['missing_field', 'body.players[].kills'],
    ])
  })

  it('tolerates float noise at 1e-9 but reports a value beyond tolerance', () => {
    const noisy = run(live([A]), live([{ ...A, ew: 1.5 + 1e-9 }]))
    expect(noisy.differences).toEqual([])
    expect(noisy.tolerated).toBe(1)
    const off = run(live([A]), live([{ ...A, ew: 1.6 }]))
    expect(off.differences).toMatchObject([{ class: 'value', path: 'body.players[A].ew' }])
  })

  it('compares timestamps as instants with the path tolerance', () => {
    const sameInstant = run(live([A]), live([{ ...A, timestamp: '2026-11-22T08:10:02.000+00:00' }]))
    expect(sameInstant.differences.map((d) => d.class)).toEqual(['format'])
    const within = run(live([A]), live([{ ...A, timestamp: '2026-11-22T08:10:02.400000+00:00' }]))
    expect(within.differences).toEqual([])
    const beyond = run(live([A]), live([{ ...A, timestamp: '2026-11-22T08:10:03+00:00' }]))
    expect(beyond.differences).toMatchObject([{ class: 'value', detail: 'Δ=1000ms' }])
  })

  it('reports players in another order as an order difference only', () => {
    const { differences } = run(live([A, B]), live([B, A]))
    expect(differences).toMatchObject([{ class: 'order', path: 'body.players', primary: ['A', 'B'] }])
  })

  it('with orderBy, lets rows tied on the sort fields come in either order, and no others', () => {
    const history = parseRules({
      endpoints: {
        history: {
          keys: { 'body.data': ['character_name', 'timestamp'] },
          ordered: ['body.data'],
          orderBy: { 'body.data': ['timestamp'] },
        },
      },
    }).endpoints.history
    const at = (character_name: string, timestamp: string) => ({ character_name, timestamp })
    const doc = (...data: object[]) => ({ status: 200, body: { data } })
    const cmp = (p: unknown, s: unknown) =>
      compareDocs(normalize(p, history), normalize(s, history), history, rules)
    const t1 = '2026-11-22T08:10:02+00:00'
    const t2 = '2026-11-22T08:10:04+00:00'
    // Zoë and Älva at the same instant: either order is "ordered by time".
    expect(
      cmp(
        doc(at('Zoë', t1), at('Älva', t1), at('Zoë', t2)),
        doc(at('Älva', t1), at('Zoë', t1), at('Zoë', t2)),
      ).differences,
    ).toEqual([])
    // A later row before an earlier one is still out of order.
    expect(
      cmp(doc(at('Zoë', t1), at('Zoë', t2)), doc(at('Zoë', t2), at('Zoë', t1))).differences,
    ).toMatchObject([{ class: 'order', path: 'body.data' }])
    expect(() => parseRules({ endpoints: { h: { orderBy: { 'body.data': ['timestamp'] } } } })).toThrow(
      /needs body.data in "ordered"/,
    )
  })

  it('ignores order of keyed arrays not listed as ordered', () => {
    const p1 = {
      status: 200,
      body: {
        portals: [
          { ns: 1, ew: 2 },
          { ns: 3, ew: 4 },
        ],
      },
    }
    const p2 = {
      status: 200,
      body: {
        portals: [
          { ns: 3, ew: 4 + 1e-9 },
          { ns: 1, ew: 2 },
        ],
      },
    }
    expect(run(p1, p2, 'portals').differences).toEqual([])
  })

  it('reports a status difference on the status path', () => {
    const { differences } = run({ status: 200, body: { total: 1 } }, { status: 404, body: { total: 1 } })
    expect(differences).toMatchObject([{ class: 'value', path: 'status', primary: 200, shadow: 404 }])
  })

  it('reports an object turned array as a type change', () => {
    const { differences } = run({ status: 200, body: { a: { x: 1 } } }, { status: 200, body: { a: [1] } })
    expect(differences).toMatchObject([{ class: 'type_change', path: 'body.a' }])
  })
})

describe('rules', () => {
  it('matches patterns by segment', () => {
    expect(matchesPattern('body.players[].*', 'body.players[].kills')).toBe(true)
    expect(matchesPattern('body.players[].*', 'body.players[].a.b')).toBe(false)
    expect(matchesPattern('body.**', 'body.players[].a.b')).toBe(true)
    expect(matchesPattern('body.players[].kills', 'body.players[].kills_per_hour')).toBe(false)
  })

  it('refuses a waiver without an owner', () => {
    expect(() =>
      parseRules({}, [{ id: 'w', endpoint: 'live', path: 'x', reason: 'r', expires: '2027-01-01' }]),
    ).toThrow(/owner/)
  })

  it('refuses an unknown class in severity', () => {
    expect(() => parseRules({ severity: { spelling: 'hard' } })).toThrow(/unknown class/)
  })
})
