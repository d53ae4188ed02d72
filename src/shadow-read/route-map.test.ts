import { describe, expect, it } from 'vitest'
import { parseManifest } from '../compare/manifest.ts'
import { OTHER_LABEL, RouteMap } from './route-map.ts'

const manifest = parseManifest({
  endpoints: [
    { name: 'live', path: '/live' },
    { name: 'trails', path: '/trails?seconds=600' },
    { name: 'history', path: '/history?from={now-3600s}' },
    { name: 'stats', path: '/stats/{character}' },
    { name: 'character-stats-list', path: '/character-stats/list' },
    { name: 'character-stats', path: '/character-stats/{character}' },
    { name: 'api-version', path: '/api-version', compare: 'status' },
  ],
})

describe('RouteMap: a user request path to its catalog endpoint', () => {
  const routes = new RouteMap(manifest)

  it('matches on the path, whatever the query', () => {
    expect(routes.endpointOf('/live')?.name).toBe('live')
    expect(routes.endpointOf('/trails?seconds=300')?.name).toBe('trails')
    expect(routes.endpointOf('/history?from=2026-01-01T00:00:00Z&character=X')?.name).toBe('history')
  })

  it('fills {character} with one segment, encoded names included', () => {
    expect(routes.endpointOf('/stats/Bael%20Zharon')?.name).toBe('stats')
    expect(routes.endpointOf('/stats/')).toBeUndefined()
    expect(routes.endpointOf('/stats/a/b')).toBeUndefined()
  })

  it('prefers a literal segment to {character}, whatever the catalog order', () => {
    const reversed = new RouteMap(
      parseManifest({
        endpoints: [
          { name: 'live', path: '/live' },
          { name: 'character-stats', path: '/character-stats/{character}' },
          { name: 'character-stats-list', path: '/character-stats/list' },
        ],
      }),
    )
    expect(reversed.endpointOf('/character-stats/list')?.name).toBe('character-stats-list')
    expect(reversed.endpointOf('/character-stats/Elysa')?.name).toBe('character-stats')
  })

  it('tolerates an unstripped /api/ prefix, but /api-version is its own route', () => {
    expect(routes.endpointOf('/api/live')?.name).toBe('live')
    expect(routes.endpointOf('/api/stats/Elysa')?.name).toBe('stats')
    expect(routes.endpointOf('/api-version')).toEqual({ name: 'api-version', compare: 'status' })
  })

  it('maps no endpoint for the dashboard, /me or the inventory', () => {
    for (const url of ['/', '/me', '/inv/items', '/index.html', '/live/', '//live']) {
      expect(routes.endpointOf(url)).toBeUndefined()
    }
  })

  it('labels other routes by their first segment, at most a bounded number of labels', () => {
    const small = new RouteMap(manifest, 2)
    expect(small.labelOf('/live?x=1')).toBe('live')
    expect(small.labelOf('/inv/items/12')).toBe('/inv/*')
    expect(small.labelOf('/me')).toBe('/me')
    expect(small.labelOf('/assets/app.js')).toBe(OTHER_LABEL)
    expect(small.labelOf('/inv/other')).toBe('/inv/*')
    expect(small.labelOf('/')).toBe(OTHER_LABEL)
  })

  it('never keys anything by an untrusted name: __proto__ is a label like any other', () => {
    const r = new RouteMap(manifest)
    expect(r.labelOf('/__proto__')).toBe('/__proto__')
    expect(r.endpointOf('/constructor')).toBeUndefined()
  })
})
