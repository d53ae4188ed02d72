import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  basePathScript,
  basePathScriptHash,
  normalizeBasePath,
  prefixPath,
  rewriteCss,
  rewriteHtml,
} from './base-path.ts'

// What `vite build` emits for the dashboard, give or take the hashes.
const VITE_INDEX = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
    <title>Dereth Tracker</title>
    <script type="module" crossorigin src="/assets/index-BdE3x9aZ.js"></script>
    <link rel="modulepreload" crossorigin href="/assets/vendor-Cq1.js">
    <link rel="stylesheet" crossorigin href="/assets/index-D2k.css">
  </head>
  <body>
    <div id="root"></div>
  </body>
</html>
`

describe('normalizeBasePath', () => {
  it('accepts the usual spellings and means "no prefix" for empty or /', () => {
    expect(normalizeBasePath('/ts')).toBe('/ts')
    expect(normalizeBasePath('ts/')).toBe('/ts')
    expect(normalizeBasePath(' /shadow/ts/ ')).toBe('/shadow/ts')
    expect(normalizeBasePath(undefined)).toBeUndefined()
    expect(normalizeBasePath('')).toBeUndefined()
    expect(normalizeBasePath('/')).toBeUndefined()
  })

  it('refuses anything that would need escaping in HTML, CSS or JS', () => {
    for (const bad of ['/t s', '/ts"', "/ts'", '/<ts>', '/ts/../x', '/a?b', '/a#b', '/%2e'])
      expect(() => normalizeBasePath(bad), bad).toThrow(/bad BASE_PATH/)
  })
})

describe('prefixPath', () => {
  it('prefixes absolute paths only', () => {
    expect(prefixPath('/assets/a.js', '/ts')).toBe('/ts/assets/a.js')
    expect(prefixPath('/', '/ts')).toBe('/ts/')
    expect(prefixPath('/tsx', '/ts')).toBe('/ts/tsx')
    for (const keep of [
      '//cdn.example/a.js',
      '/\\evil',
      'http://x/a',
      'data:,x',
      'a.js',
      './a',
      '#top',
      '?q',
    ])
      expect(prefixPath(keep, '/ts')).toBe(keep)
  })

  it('leaves paths already below the prefix alone', () => {
    for (const p of ['/ts', '/ts/', '/ts/live', '/ts?x=1', '/ts#a']) expect(prefixPath(p, '/ts')).toBe(p)
  })
})

describe('rewriteHtml', () => {
  it("prefixes a Vite index.html's scripts, preloads, styles and icons, and injects the script first in <head>", () => {
    const out = rewriteHtml(VITE_INDEX, '/ts')
    expect(out).toContain('src="/ts/assets/index-BdE3x9aZ.js"')
    expect(out).toContain('href="/ts/assets/vendor-Cq1.js"')
    expect(out).toContain('href="/ts/assets/index-D2k.css"')
    expect(out).toContain('href="/ts/favicon.svg"')
    expect(out).not.toMatch(/(?:src|href)="\/(?!ts\/)/)
    expect(out).toMatch(/<head>\s*<script data-overlord-base-path="\/ts">/)
    expect(out.indexOf('data-overlord-base-path')).toBeLessThan(out.indexOf('<meta charset'))
  })

  it('handles quotes, bare values, forms, buttons and upper case', () => {
    const out = rewriteHtml(
      `<FORM ACTION=/login method=post><button formaction='/logout'>x</button></FORM><a href = "/classic/">c</a>`,
      '/ts',
    )
    expect(out).toContain('ACTION=/ts/login')
    expect(out).toContain("formaction='/ts/logout'")
    expect(out).toContain('href = "/ts/classic/"')
  })

  it('leaves other hosts, relative URLs, script text, comments and non-URL attributes alone', () => {
    const html = [
      '<head></head>',
      '<a href="https://example.com/x">e</a><a href="//cdn/x">n</a><img src="img/a.png">',
      '<!-- <img src="/commented.png"> -->',
      '<script>const u = "<img src=\\"/in-script.png\\">"; fetch("/live")</script>',
      '<div data-src="/data" title="/title">t</div>',
    ].join('')
    const out = rewriteHtml(html, '/ts')
    expect(out.slice(out.indexOf('</script>') + '</script></head>'.length)).toBe(
      html.slice('<head></head>'.length),
    )
  })

  it('rewrites <style> text as CSS and keeps the <script src> of an inline-free script', () => {
    const out = rewriteHtml(
      '<style>body{background:url(/assets/bg.png)}</style><script src="/a.js"></script>',
      '/ts',
    )
    expect(out).toContain('url(/ts/assets/bg.png)')
    expect(out).toContain('<script src="/ts/a.js"></script>')
  })

  it('injects without a <head>, after <html> or at the start', () => {
    expect(rewriteHtml('<html lang="en"><p>x</p></html>', '/ts')).toMatch(
      /^<html lang="en"><script data-overlord-base-path/,
    )
    expect(rewriteHtml('<html>shadow dashboard</html>', '/ts')).toMatch(/^<html><script /)
    expect(rewriteHtml('plain', '/ts')).toMatch(/^<script [^>]+>[\s\S]+<\/script>plain$/)
  })

  it('is idempotent', () => {
    const once = rewriteHtml(VITE_INDEX, '/ts')
    expect(rewriteHtml(once, '/ts')).toBe(once)
  })
})

describe('rewriteCss', () => {
  it('prefixes absolute url() and @import references, in every quoting', () => {
    const css = `@import "/base.css";@font-face{src:url(/assets/f.woff2) format("woff2")}
.a{background:url( '/assets/a.png' )}.b{background:url("/assets/b.png")}
.c{background:url(//cdn/c.png)}.d{background:url(data:image/png;base64,AA==)}.e{background:url(e.png)}`
    const out = rewriteCss(css, '/ts')
    expect(out).toContain('@import "/ts/base.css"')
    expect(out).toContain('url(/ts/assets/f.woff2)')
    expect(out).toContain("url( '/ts/assets/a.png' )")
    expect(out).toContain('url("/ts/assets/b.png")')
    expect(out).toContain('url(//cdn/c.png)')
    expect(out).toContain('url(data:image/png;base64,AA==)')
    expect(out).toContain('url(e.png)')
    expect(rewriteCss(out, '/ts')).toBe(out)
  })
})

describe('basePathScript', () => {
  it('is valid JavaScript naming its prefix, safe to inline and without eval', () => {
    const script = basePathScript('/ts')
    expect(() => new Function(script)).not.toThrow()
    expect(script).toContain('const B = "/ts"')
    expect(script).not.toMatch(/<\/script|<!--|\beval\(|new Function/i)
  })

  it('has a CSP hash of exactly what rewriteHtml injects', () => {
    const out = rewriteHtml('<head></head>', '/ts')
    const text = /<script [^>]+>([\s\S]*)<\/script>/.exec(out)?.[1] ?? ''
    const digest = createHash('sha256').update(text).digest('base64')
    expect(basePathScriptHash('/ts')).toBe(`'sha256-${digest}'`)
  })
})
