import type { Manifest } from '../compare/manifest.ts'

/** A catalog endpoint a user's request reads. */
export interface EndpointMatch {
  name: string
  /** `status`: only the status code is compared (`/api-version`, different by design). */
  compare: 'full' | 'status'
}

interface Template {
  match: EndpointMatch
  /** Path segments; `null` stands for `{character}` (any one non-empty segment). */
  segments: (string | null)[]
  params: number
}

/** Routes the catalog does not have are counted under at most this many path patterns. */
export const MAX_OTHER_LABELS = 64
const MAX_LABEL_LENGTH = 48
export const OTHER_LABEL = '(other)'

const pathOf = (rawUrl: string): string => {
  const q = rawUrl.indexOf('?')
  return q === -1 ? rawUrl : rawUrl.slice(0, q)
}

/**
 * Which catalog endpoint (`compare/endpoints.json`) a user's request path reads, so its answers are
 * compared under that endpoint's rules, and the bounded label every request is counted under.
 * Matched on the path (the query is the user's own: `/trails?seconds=300` is still `trails`); a
 * literal segment beats `{character}` (`/character-stats/list` is the list, not a character), and a
 * leading `/api/` is tolerated in case nginx does not strip it (CONTRACT.md §4). Pure.
 */
export class RouteMap {
  readonly #templates: Template[]
  readonly #labels = new Set<string>()
  readonly #maxLabels: number

  constructor(manifest: Manifest, maxLabels = MAX_OTHER_LABELS) {
    this.#maxLabels = maxLabels
    this.#templates = manifest.endpoints
      .map((spec) => {
        const segments = pathOf(spec.path)
          .split('/')
          .slice(1)
          .map((s) => (s === '{character}' ? null : s))
        return {
          match: { name: spec.name, compare: spec.compare ?? 'full' } satisfies EndpointMatch,
          segments,
          params: segments.filter((s) => s === null).length,
        }
      })
      // Fewest placeholders first: a literal route wins over a `{character}` one.
      .sort((a, b) => a.params - b.params)
  }

  /** The endpoint a request URL (path and query) reads, or undefined for any other route. */
  endpointOf(rawUrl: string): EndpointMatch | undefined {
    const path = pathOf(rawUrl)
    return this.#find(path) ?? (path.startsWith('/api/') ? this.#find(path.slice(4)) : undefined)
  }

  #find(path: string): EndpointMatch | undefined {
    const segments = path.split('/').slice(1)
    for (const t of this.#templates) {
      if (t.segments.length !== segments.length) continue
      if (t.segments.every((s, i) => (s === null ? segments[i] !== '' : s === segments[i]))) return t.match
    }
    return undefined
  }

  /**
   * The label a request is counted under: its endpoint's name, else the pattern of its path's first
   * segment (`/me`, `/inv/*`, `/`). Untrusted paths make the labels, so there are at most
   * {@link MAX_OTHER_LABELS} of them; past that, every new one is {@link OTHER_LABEL}.
   */
  labelOf(rawUrl: string): string {
    const endpoint = this.endpointOf(rawUrl)
    if (endpoint !== undefined) return endpoint.name
    const segments = pathOf(rawUrl).split('/').slice(1)
    const head = (segments[0] ?? '').slice(0, MAX_LABEL_LENGTH)
    const label = `/${head}${segments.length > 1 ? '/*' : ''}`
    if (this.#labels.has(label)) return label
    if (this.#labels.size >= this.#maxLabels) return OTHER_LABEL
    this.#labels.add(label)
    return label
  }
}
