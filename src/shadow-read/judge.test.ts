import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { parseManifest } from '../compare/manifest.ts'
import { parseRules } from '../compare/rules.ts'
import { decodeAnswer, PairJudge, type PairVerdict, preview } from './judge.ts'

const bytes = (text: string) => new TextEncoder().encode(text)
const raw = (status: number, body: string | Uint8Array, extra: Record<string, string> = {}) => ({
  status,
  contentType: 'application/json',
  contentEncoding: extra.encoding,
  body: typeof body === 'string' ? bytes(body) : body,
  at: 1_000,
})

describe('decodeAnswer', () => {
  it('parses JSON, gzip undone', () => {
    expect(decodeAnswer(raw(200, '{"a":1}'), 1024).body).toEqual({ a: 1 })
    expect(decodeAnswer(raw(200, gzipSync('{"a":2}'), { encoding: 'gzip' }), 1024).body).toEqual({ a: 2 })
  })

  it('keeps the status alone for a body that is not JSON, too large unzipped, or nested too deep', () => {
    expect(decodeAnswer(raw(502, '<html>Bad Gateway</html>'), 1024)).toEqual({ status: 502, at: 1_000 })
    const big = gzipSync(JSON.stringify({ x: 'y'.repeat(10_000) }))
    expect(decodeAnswer(raw(200, big, { encoding: 'gzip' }), 1024).body).toBeUndefined()
    expect(decodeAnswer(raw(200, `${'['.repeat(100)}${']'.repeat(100)}`), 1024).body).toBeUndefined()
  })

  it('previews a large value as the start of its JSON', () => {
    expect(preview({ a: 1 })).toEqual({ a: 1 })
    const p = preview({ s: 'x'.repeat(1_000) }) as string
    expect(p.length).toBe(501)
    expect(p.endsWith('…')).toBe(true)
  })
})

describe('PairJudge', () => {
  const manifest = parseManifest({
    endpoints: [
      { name: 'live', path: '/live' },
      { name: 'stats', path: '/stats/{character}' },
      { name: 'api-version', path: '/api-version', compare: 'status' },
    ],
  })
  const rules = parseRules({ endpoints: {} })
  const judgeNow = (judge: PairJudge, endpoint: string, url: string, p: unknown, s: unknown) => {
    let verdict: PairVerdict | Error | undefined
    const answer = (v: unknown) =>
      typeof v === 'number' ? { status: v, at: 1 } : (v as { status: number; at: number })
    judge.submit(endpoint, url, answer(p), answer(s), 10, (v) => {
      verdict = v
    })
    judge.expire(10, true)
    if (!(verdict !== undefined && !(verdict instanceof Error))) throw new Error('no verdict')
    return verdict
  }

  it('a 404 against a 200 is a mismatch on the status', () => {
    const v = judgeNow(
      new PairJudge(rules, manifest),
      'stats',
      '/stats/Nobody',
      { status: 404, body: { detail: 'Character not found' }, at: 1 },
      { status: 200, body: { detail: 'Character not found' }, at: 1 },
    )
    expect(v.mismatchCount).toBe(1)
    expect(v.mismatches[0]).toMatchObject({ path: 'status', class: 'value', primary: 404, shadow: 200 })
  })

  it('compares only the status of a status-only endpoint', () => {
    const v = judgeNow(
      new PairJudge(rules, manifest),
      'api-version',
      '/api-version',
      { status: 200, body: { version: 'a' }, at: 1 },
      { status: 200, body: { version: 'b' }, at: 1 },
    )
    expect(v.mismatchCount).toBe(0)
  })

  it('holds a pair until the next primary read of its URL, which brackets it', () => {
    const judge = new PairJudge(rules, manifest)
    const verdicts: PairVerdict[] = []
    judge.submit(
      'stats',
      '/stats/A',
      { status: 200, body: { n: 1 }, at: 100 },
      { status: 200, body: { n: 2 }, at: 100, endedAt: 150 },
      150,
      (v) => verdicts.push(v as PairVerdict),
    )
    expect(judge.held).toBe(1)
    // A read that started before the shadow answered does not bracket it.
    judge.feed('stats', '/stats/A', { status: 200, body: { n: 1 }, at: 120 }, 160)
    expect(judge.held).toBe(1)
    judge.feed('stats', '/stats/A', { status: 200, body: { n: 2 }, at: 200 }, 210)
    expect(judge.held).toBe(0)
    expect(verdicts).toHaveLength(1)
    expect(verdicts[0]).toMatchObject({ mismatchCount: 0, explained: 1, bracketed: true })
  })

  it('judges a held pair on its own read once its wait is over', () => {
    const judge = new PairJudge(rules, manifest, { secondReadMs: 1_000 })
    const verdicts: PairVerdict[] = []
    judge.submit(
      'stats',
      '/stats/A',
      { status: 200, body: { n: 1 }, at: 100 },
      { status: 200, body: { n: 2 }, at: 100, endedAt: 150 },
      150,
      (v) => verdicts.push(v as PairVerdict),
    )
    judge.expire(1_000)
    expect(verdicts).toHaveLength(0)
    judge.expire(1_150)
    expect(verdicts).toEqual([expect.objectContaining({ mismatchCount: 1, bracketed: false })])
  })
})
