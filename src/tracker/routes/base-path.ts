import { createHash } from 'node:crypto'
import { ERR, OverlordError } from '../../protocol/errors.ts'

/**
 * Serving an unchanged dashboard bundle below a path prefix (`BASE_PATH`, e.g. `/ts` behind
 * nginx's `location /ts/`). The bundle names absolute paths (`/assets/…`, `/live`, `/api/…`,
 * `ws://${location.host}/ws/live`); below a prefix each of them would reach whatever owns the
 * site's root (the live tracker), so the HTML and CSS are rewritten on the way out and a small
 * script prefixes what the code asks for at run time. Pure functions: static-bundle.ts does the I/O.
 */

const SEGMENT = /^[A-Za-z0-9._~-]+$/

/**
 * `ts`, `/ts` and `/ts/` → `/ts`; empty or `/` → undefined (no prefix). Only unreserved URL
 * characters are allowed in a segment, so the prefix is safe in HTML, CSS, JS and regexes alike.
 */
export function normalizeBasePath(raw: string | undefined): string | undefined {
  const segments = (raw ?? '').trim().split('/').filter(Boolean)
  if (segments.length === 0) return undefined
  for (const s of segments) {
    if (!SEGMENT.test(s) || s === '.' || s === '..')
      throw new OverlordError(ERR.CONFIG, `bad BASE_PATH: ${JSON.stringify(raw)} (use e.g. /ts)`)
  }
  return `/${segments.join('/')}`
}

/**
 * Prefixes an absolute-path reference (`/x`); leaves alone network-path (`//host/x`), absolute
 * (`http:`, `data:`), relative and fragment references, and paths already below the prefix,
 * so rewriting twice equals rewriting once.
 */
export function prefixPath(value: string, basePath: string): string {
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return value
  if (value.startsWith(basePath) && /^(?:$|[/?#])/.test(value.slice(basePath.length))) return value
  return basePath + value
}

/** The attributes whose absolute paths are prefixed in served HTML. */
const URL_ATTRIBUTE =
  /(\s(?:src|href|action|formaction|poster)\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/gi
/** Comments, `<script>`/`<style>` elements (their text is not markup) and every other start tag. */
const HTML_TOKEN =
  /<!--[\s\S]*?-->|<(script|style)\b((?:[^>"']|"[^"]*"|'[^']*')*)>([\s\S]*?)(<\/\1\s*>)|<[a-zA-Z][^\s/>]*(?:[^>"']|"[^"]*"|'[^']*')*>/gi
const HEAD_START = /<head(?:\s(?:[^>"']|"[^"]*"|'[^']*')*)?>/i
const HTML_START = /<html(?:\s(?:[^>"']|"[^"]*"|'[^']*')*)?>/i
const MARKER = 'data-overlord-base-path'

function rewriteTag(tag: string, basePath: string): string {
  return tag.replace(URL_ATTRIBUTE, (_m, lead: string, dq?: string, sq?: string, bare?: string) =>
    dq !== undefined
      ? `${lead}"${prefixPath(dq, basePath)}"`
      : sq !== undefined
        ? `${lead}'${prefixPath(sq, basePath)}'`
        : `${lead}${prefixPath(bare ?? '', basePath)}`,
  )
}

/**
 * Rewrites an HTML document for serving below `basePath`: absolute-path `src`, `href`, `action`,
 * `formaction` and `poster` attributes get the prefix, `<style>` text is rewritten as CSS, and
 * {@link basePathScript} goes first in `<head>` (before any script or CSP `<meta>`). Script text
 * is left as it is (the injected script handles what it asks for). Idempotent.
 */
export function rewriteHtml(html: string, basePath: string): string {
  const body = html.replace(
    HTML_TOKEN,
    (token, raw?: string, attrs?: string, text?: string, end?: string) => {
      if (token.startsWith('<!--')) return token
      if (raw === undefined) return rewriteTag(token, basePath)
      const open = rewriteTag(`<${raw}${attrs ?? ''}>`, basePath)
      return open + (raw.toLowerCase() === 'style' ? rewriteCss(text ?? '', basePath) : text) + end
    },
  )
  if (body.includes(MARKER)) return body
  const script = `<script ${MARKER}="${basePath}">${basePathScript(basePath)}</script>`
  const anchor = HEAD_START.exec(body) ?? HTML_START.exec(body)
  if (anchor === null) return script + body
  const at = anchor.index + anchor[0].length
  return body.slice(0, at) + script + body.slice(at)
}

/** `url(/x)`, `url("/x")`, `url('/x')` and `@import "/x"` in a stylesheet (Vite emits absolute ones). */
const CSS_URL = /(url\(\s*["']?|@import\s+["'])(\/[^"')\s]*)/gi

/** Prefixes absolute-path `url(…)` and `@import` references in CSS. Idempotent. */
export function rewriteCss(css: string, basePath: string): string {
  return css.replace(CSS_URL, (_m, lead: string, path: string) => lead + prefixPath(path, basePath))
}

/**
 * The script that runs first in every served page. It prefixes absolute-path and same-host URLs
 * handed to `fetch`, `XMLHttpRequest.open`, `navigator.sendBeacon`, `window.open`, `WebSocket`
 * (`ws://${location.host}/ws/live` included), `EventSource`, `Worker`, `history.pushState` and
 * `replaceState` (so a reload of a client route stays below the prefix), the `src`/`href`/`action`
 * properties and `setAttribute` (dynamically added scripts, styles, images, links, forms), and
 * form actions and link targets parsed from HTML strings, fixed on submit and click. URLs already
 * below the prefix, relative ones (they resolve below it) and other hosts are left alone.
 *
 * CSP: no eval, no inline handlers; constant for a given prefix, so a `script-src` policy admits
 * it by {@link basePathScriptHash}. It goes before any CSP `<meta>` of the page, which therefore
 * does not apply to it. Idempotent: a second copy returns at once.
 */
export function basePathScript(basePath: string): string {
  return `(() => {
  const B = ${JSON.stringify(basePath)}
  if (window.__overlordBasePath !== undefined) return
  window.__overlordBasePath = B
  const fix = (u) => {
    if (typeof Request === 'function' && u instanceof Request) {
      const url = fix(u.url)
      return url === u.url ? u : new Request(url, u)
    }
    if (typeof u !== 'string' && !(u instanceof URL)) return u
    const s = String(u)
    let a
    try { a = new URL(s, location.href) } catch { return u }
    if (a.host !== location.host || !/^(https?|wss?):$/.test(a.protocol)) return u
    if (a.pathname === B || a.pathname.startsWith(B + '/')) return u
    if (s[0] === '/' && s[1] !== '/') return B + s
    a.pathname = B + a.pathname
    return a.href
  }
  const wrap = (o, k, i) => {
    const f = o && o[k]
    if (typeof f !== 'function') return
    o[k] = function (...args) {
      if (i < args.length) args[i] = fix(args[i])
      return f.apply(this, args)
    }
  }
  wrap(window, 'fetch', 0)
  wrap(window, 'open', 0)
  wrap(navigator, 'sendBeacon', 0)
  wrap(XMLHttpRequest.prototype, 'open', 1)
  wrap(History.prototype, 'pushState', 2)
  wrap(History.prototype, 'replaceState', 2)
  for (const k of ['WebSocket', 'EventSource', 'Worker', 'SharedWorker']) {
    const C = window[k]
    if (typeof C === 'function') window[k] = class extends C { constructor(u, o) { super(fix(u), o) } }
  }
  const URL_ATTR = /^(src|href|action|formaction|poster)$/i
  const setAttribute = Element.prototype.setAttribute
  Element.prototype.setAttribute = function (n, v) {
    return setAttribute.call(this, n, URL_ATTR.test(n) ? fix(v) : v)
  }
  for (const [C, k] of [[HTMLScriptElement, 'src'], [HTMLLinkElement, 'href'], [HTMLImageElement, 'src'],
    [HTMLAnchorElement, 'href'], [HTMLFormElement, 'action'], [HTMLIFrameElement, 'src'], [HTMLSourceElement, 'src']]) {
    const d = Object.getOwnPropertyDescriptor(C.prototype, k)
    if (d && d.set) Object.defineProperty(C.prototype, k, { ...d, set(v) { d.set.call(this, fix(v)) } })
  }
  const fixAttr = (el, n) => {
    const v = el && el.getAttribute && el.getAttribute(n)
    if (v) el.setAttribute(n, v)
  }
  const submit = HTMLFormElement.prototype.submit
  HTMLFormElement.prototype.submit = function () {
    fixAttr(this, 'action')
    return submit.call(this)
  }
  addEventListener('submit', (e) => { fixAttr(e.target, 'action'); fixAttr(e.submitter, 'formaction') }, true)
  for (const t of ['click', 'auxclick']) addEventListener(t, (e) => fixAttr(e.target.closest?.('a[href]'), 'href'), true)
})()`
}

/** The CSP source expression (`'sha256-…'`) that admits {@link basePathScript} for this prefix. */
export function basePathScriptHash(basePath: string): string {
  return `'sha256-${createHash('sha256').update(basePathScript(basePath)).digest('base64')}'`
}
