import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  endpoint,
  frame,
  manifestOf,
  mismatchesOf,
  type Pair,
  projectRules,
  startPair,
  startRewritingProxy,
  sweepOnce,
} from './compare-helpers.ts'

const T0 = new Date(Date.now() - 5_000)
const at = (s: number) => new Date(T0.getTime() + s * 1000)

/** A small world: three characters with kills, a rare, a second session. */
const WORLD = [
  frame('Larsson', at(0), { kills: 10, kills_per_hour: '340.5' }),
  frame('Alpha', at(0), { kills: 3, ew: -2.25, ns: 40.125 }),
  frame('Zed', at(0), { kills: 100, session_id: 's9' }),
  frame('Larsson', at(2), { kills: 14 }),
  {
    type: 'rare',
    character_name: 'Alpha',
    name: 'Pyreal Sword',
    ew: 1,
    ns: 2,
    z: 0,
    timestamp: at(2).toISOString(),
  },
]

describe('two trackers fed the same frames', () => {
  let pair: Pair
  beforeAll(async () => {
    pair = await startPair()
    await pair.feed(WORLD)
  })
  afterAll(() => pair.close())

  it('compare clean over many sweeps, on every endpoint of the manifest', async () => {
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 0) await pair.feed([frame('Larsson', at(3 + i), { kills: 14 + i })])
      const sweep = await sweepOnce(pair.primary.url, pair.shadow.url)
      expect(mismatchesOf(sweep)).toEqual([])
      expect(sweep.errors).toEqual([])
      expect(sweep.verdict).toBe('parity')
      expect(sweep.characters).toBe(3)
      expect(endpoint(sweep, 'stats').instances).toBe(3)
    }
  })

  it('accounts the input the shadow received and applied', async () => {
    const sweep = await sweepOnce(pair.primary.url, pair.shadow.url, { manifest: await manifestOf('live') })
    expect(sweep.accounting?.received).toBeGreaterThanOrEqual(WORLD.length)
    expect(sweep.accounting?.notApplied).toBe(0)
  })

  it('catches a 1e-9 shift of every coordinate: values copied from one frame compare exactly', async () => {
    const proxy = await startRewritingProxy(pair.shadow.url, (path, body) => {
      if (path === '/live') for (const p of body.players) p.ew += 1e-9
      return body
    })
    try {
      const sweep = await sweepOnce(pair.primary.url, proxy.url, { manifest: await manifestOf('live') })
      expect(sweep.verdict).toBe('mismatch')
      expect(mismatchesOf(sweep)).toEqual(Array(3).fill('live value body.players[].ew'))
    } finally {
      await proxy.close()
    }
  })

  it('catches float drift beyond tolerance as a value difference', async () => {
    const proxy = await startRewritingProxy(pair.shadow.url, (path, body) => {
      if (path === '/live') for (const p of body.players) p.ew += 1e-3
      return body
    })
    try {
      const sweep = await sweepOnce(pair.primary.url, proxy.url, { manifest: await manifestOf('live') })
      expect(mismatchesOf(sweep)).toEqual(Array(3).fill('live value body.players[].ew'))
    } finally {
      await proxy.close()
    }
  })

  it('classifies players in another order as order only, and says nothing when order is waived', async () => {
    const proxy = await startRewritingProxy(pair.shadow.url, (path, body) => {
      if (path === '/live') body.players.reverse()
      return body
    })
    try {
      const sweep = await sweepOnce(pair.primary.url, proxy.url, { manifest: await manifestOf('live') })
      expect(mismatchesOf(sweep)).toEqual(['live order body.players'])
      expect(endpoint(sweep, 'live').hard).toBe(0)
      const waiver = {
        id: 'W-order',
        endpoint: 'live',
        path: 'body.players',
        classes: ['order' as const],
        reason: 'dashboard sorts client-side',
        owner: 'ops',
        expires: '2099-01-01',
      }
      const waived = await sweepOnce(pair.primary.url, proxy.url, {
        manifest: await manifestOf('live'),
        rules: await projectRules([waiver]),
      })
      expect(waived.verdict).toBe('parity')
      expect(endpoint(waived, 'live').examples).toEqual([])
      expect(waived.waivers).toMatchObject([{ id: 'W-order', suppressed: 1 }])
    } finally {
      await proxy.close()
    }
  })

  it('classifies kills_per_hour as a string as a type change and a missing field as missing', async () => {
    const proxy = await startRewritingProxy(pair.shadow.url, (path, body) => {
      if (path === '/live') {
        for (const p of body.players) p.kills_per_hour = String(p.kills_per_hour)
        delete body.players[0].vt_state
      }
      return body
    })
    try {
      const sweep = await sweepOnce(pair.primary.url, proxy.url, { manifest: await manifestOf('live') })
      expect(sweep.verdict).toBe('mismatch')
      expect(mismatchesOf(sweep)).toEqual([
        'live missing_field body.players[].vt_state',
        ...Array(3).fill('live type_change body.players[].kills_per_hour'),
      ])
      const example = endpoint(sweep, 'live').examples.find(
        (d) => d.path === 'body.players[Larsson].kills_per_hour',
      )
      expect(example).toMatchObject({
        class: 'type_change',
        primary: 340.5,
        shadow: '340.5',
        status: 'mismatch',
      })
    } finally {
      await proxy.close()
    }
  })
})

describe('injected divergences in the shadow itself', () => {
  it('a 60 s window instead of 30 s shows as an extra entity on /live', async () => {
    let now = Date.now()
    const clock = { now: () => now }
    const pair = await startPair({ activeWindowMs: 60_000 }, { clock })
    try {
      await pair.feed([frame('Old Timer', new Date(now))])
      now += 45_000
      await pair.feed([frame('Larsson', new Date(now))])
      const sweep = await sweepOnce(pair.primary.url, pair.shadow.url, { manifest: await manifestOf('live') })
      expect(mismatchesOf(sweep)).toEqual(['live extra_entity body.players[]'])
      expect(endpoint(sweep, 'live').examples[0]).toMatchObject({ path: 'body.players[Old Timer]' })
    } finally {
      await pair.close()
    }
  })

  it('a rare not counted by the shadow shows as value differences on the uncached rare totals', async () => {
    const pair = await startPair()
    try {
      await pair.feed([frame('Larsson', new Date())])
      await pair.feed(
        [
          {
            type: 'rare',
            character_name: 'Larsson',
            name: 'Pyreal Sword',
            ew: 1,
            ns: 2,
            z: 0,
            timestamp: new Date().toISOString(),
          },
        ],
        'primary',
      )
      const sweep = await sweepOnce(pair.primary.url, pair.shadow.url, {
        manifest: await manifestOf('live', 'total-rares', 'stats'),
      })
      expect(sweep.verdict).toBe('mismatch')
      // /live's totals are read at each side's own cache refresh, so one rare apart there is within
      // its declared allowance (rules.json); the uncached routes catch it exactly.
      expect(mismatchesOf(sweep)).toEqual([
        'stats value body.total_rares',
        'total-rares value body.all_time',
        'total-rares value body.today',
      ])
    } finally {
      await pair.close()
    }
  })
})

describe('lag against real trackers', () => {
  it('a shadow at an older frame is lag, measured, not a mismatch; at the same frame the same gap is a mismatch', async () => {
    const pair = await startPair()
    try {
      const t = Date.now()
      // The shadow trails: it has only the older position.
      await pair.feed([frame('Larsson', new Date(t - 4000), { ew: 0 })], 'shadow')
      await pair.feed([frame('Larsson', new Date(t - 2000), { ew: 1 })], 'primary')
      const lagging = await sweepOnce(pair.primary.url, pair.shadow.url, {
        manifest: await manifestOf('live'),
      })
      expect(lagging.verdict).toBe('parity')
      expect(lagging.lag).toMatchObject({ behind: 1, unpaired: 1, maxMs: 2000 })

      // Both at the frame of t - 1000, but the shadow serves another position for it.
      await pair.feed([frame('Larsson', new Date(t - 1000), { ew: 2 })], 'primary')
      await pair.feed([frame('Larsson', new Date(t - 1000), { ew: 3 })], 'shadow')
      const diverged = await sweepOnce(pair.primary.url, pair.shadow.url, {
        manifest: await manifestOf('live'),
      })
      expect(mismatchesOf(diverged)).toContain('live value body.players[].ew')
      expect(diverged.lag).toMatchObject({ paired: 1, behind: 0 })
    } finally {
      await pair.close()
    }
  })
})

describe('a backend that is down', () => {
  it('is an error entry in the sweep, not a crash', async () => {
    const pair = await startPair()
    const deadUrl = pair.shadow.url
    await pair.shadow.close()
    try {
      const sweep = await sweepOnce(pair.primary.url, deadUrl, {
        manifest: await manifestOf('live', 'total-kills'),
      })
      expect(sweep.verdict).toBe('error')
      expect(sweep.errors.map((e) => [e.side, e.endpoint, e.code])).toEqual([
        ['shadow', 'live', 'CMP_ERR_BACKEND'],
        ['shadow', 'total-kills', 'CMP_ERR_BACKEND'],
      ])
      expect(endpoint(sweep, 'live').clean).toBe(false)
    } finally {
      await pair.primary.close()
    }
  })
})
