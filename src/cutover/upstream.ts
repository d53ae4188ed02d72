import { randomBytes } from 'node:crypto'
import { open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Which tracker the live paths go to. */
export type LiveSide = 'typescript' | 'python'

export interface UpstreamFile {
  /** The nginx upstream name the live site's locations `proxy_pass` to (nginx/live-locations.conf). */
  name: string
  /** `host:port` of the tracker that serves `/`, `/api/`, `/ws/live` and `/ws/position`. */
  server: string
  side: LiveSide
  action: 'flip' | 'rollback'
  at: string
  by: string
  reason: string
}

const SIDE_TEXT: Record<LiveSide, string> = {
  typescript: 'the TypeScript tracker (TRACKER_ROLE=primary, writing dereth)',
  python: 'the Python tracker',
}

/** One line of a comment: what an operator typed must not break out of it. */
const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ').trim()

/**
 * The include file `cutover flip`/`rollback` write: the one upstream every live path uses. An
 * operator names the file (`--nginx-include`); its only directive is that upstream, so nothing
 * else in the site can be changed by a flip.
 */
export function renderUpstream(u: UpstreamFile): string {
  return `# Managed by \`overlord-ts cutover flip|rollback\`: the next flip or rollback rewrites this file.
# ${u.at} ${u.action} by ${oneLine(u.by)}: ${oneLine(u.reason)}
# The live paths (/, /api/, /ws/live, /ws/position) go to ${SIDE_TEXT[u.side]}.
upstream ${u.name} {
    server ${u.server};
    keepalive 16;
}
`
}

/** The `server` an upstream include names, or undefined when it names none. */
export function upstreamServer(text: string, name: string): string | undefined {
  const block = new RegExp(`upstream\\s+${name}\\s*\\{([^}]*)\\}`).exec(text)
  return block === null ? undefined : /\bserver\s+([^\s;]+)/.exec(block[1] ?? '')?.[1]
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Replaces `file` with `text` so that nginx, reading it at any instant, sees the old file or the
 * new one, never half of either: written beside it, synced, then renamed over it.
 */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`)
  const handle = await open(tmp, 'w', 0o644)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
