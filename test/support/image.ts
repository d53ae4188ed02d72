import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, readlink, symlink } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import ts from 'typescript'
import { interpolate, ROOT } from './compose.ts'

/**
 * The image without docker, for the compose tests: the Dockerfile's stages, the build context after
 * .dockerignore, and the final stage laid out in a directory (its COPY lines, and the packages
 * `npm ci --omit=dev` installs) so the commands the compose file gives the image can run here.
 */

export interface Instruction {
  keyword: string
  args: string
}

export interface Stage {
  image: string
  name: string | undefined
  instructions: Instruction[]
}

/** The Dockerfile's stages, each with its instructions (continuations joined, comments dropped). */
export async function readDockerfile(): Promise<Stage[]> {
  const text = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ')
  const stages: Stage[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line)
    if (m === null || line.trimStart().startsWith('#')) continue
    const keyword = m[1]!.toUpperCase()
    const args = m[2]!.trim()
    if (keyword === 'FROM') {
      const [image = '', , name] = args.split(/\s+/)
      stages.push({ image, name, instructions: [] })
    } else stages.at(-1)?.instructions.push({ keyword, args })
  }
  return stages
}

/**
 * The packages a module loads when it runs: its imports, re-exports and `import()` calls, less
 * relative paths, node builtins and what type stripping erases (`import type`, `export type`;
 * `import { type X }` stays, as verbatimModuleSyntax keeps it).
 */
export function runtimePackages(file: string, text: string): string[] {
  const specifiers: string[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly)
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text)
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && !node.isTypeOnly)
      specifiers.push((node.moduleSpecifier as ts.StringLiteral).text)
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    )
      specifiers.push(node.arguments[0].text)
    ts.forEachChild(node, visit)
  }
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest))
  return specifiers
    .filter((spec) => !spec.startsWith('.') && !isBuiltin(spec))
    .map((spec) =>
      spec
        .split('/')
        .slice(0, spec.startsWith('@') ? 2 : 1)
        .join('/'),
    )
}

/** An exec-form argument list (`["node", "x"]`). */
export const execForm = (args: string): string[] => JSON.parse(args) as string[]

/** A .dockerignore pattern as Docker reads it: `*`, `?` within a segment, `**` across, and all below. */
function dockerPattern(pattern: string): RegExp {
  const p = pattern.replace(/^\/+|\/+$/g, '')
  let re = ''
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!
    if (c === '*' && p[i + 1] === '*') {
      i += 1
      if (p[i + 1] === '/') {
        i += 1
        re += '(?:.*/)?'
      } else re += '.*'
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}(?:/.*)?$`)
}

/** The build context: every file docker would send, relative to ROOT (POSIX separators). */
export async function buildContext(): Promise<Set<string>> {
  const rules = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => ({ keep: l.startsWith('!'), re: dockerPattern(l.replace(/^!/, '')) }))
  const ignored = (path: string): boolean => {
    let out = false
    for (const r of rules) if (r.re.test(path)) out = !r.keep
    return out
  }
  // Walking them would take long: the context must leave them out anyway.
  for (const heavy of ['node_modules', '.git'])
    if (!ignored(heavy)) throw new Error(`.dockerignore sends ${heavy} to the build context`)
  const files = new Set<string>()
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(join(ROOT, dir), { withFileTypes: true })) {
      const path = dir === '' ? e.name : `${dir}/${e.name}`
      if (dir === '' && (e.name === 'node_modules' || e.name === '.git')) continue
      if (e.isDirectory()) await walk(path)
      else if (e.isFile() && !ignored(path)) files.add(path)
    }
  }
  await walk('')
  return files
}

/** Hard-links (or copies) the tree `from` to `to`, leaving out `skip` directories at its top. */
async function linkTree(from: string, to: string, skip: readonly string[] = []): Promise<void> {
  await mkdir(to, { recursive: true })
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (skip.includes(e.name)) continue
    const [src, dst] = [join(from, e.name), join(to, e.name)]
    if (e.isDirectory()) await linkTree(src, dst)
    else if (e.isSymbolicLink()) await symlink(await readlink(src), dst)
    else await link(src, dst).catch(() => copyFile(src, dst))
  }
}

/**
 * What `npm ci --omit=dev` installs: every package-lock.json entry not marked `dev`, taken from
 * this checkout's node_modules (nested node_modules come as entries of their own).
 */
async function installProduction(into: string): Promise<void> {
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>
  }
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || !path.startsWith('node_modules/')) continue
    await linkTree(join(ROOT, path), join(into, path), ['node_modules'])
  }
}

export interface ImageLayout {
  /** Where `/` of the image is. */
  root: string
  /** The final WORKDIR, under `root`. */
  workdir: string
  env: Record<string, string>
  entrypoint: string[]
  cmd: string[]
  healthcheck: string[]
  user: string | undefined
}

/** Lays out the Dockerfile's final stage in a temporary directory, with `buildArgs` for its ARGs. */
export async function layOutImage(buildArgs: Record<string, string>): Promise<ImageLayout> {
  const stages = await readDockerfile()
  const final = stages.at(-1)!
  const context = await buildContext()
  const root = await mkdtemp(join(tmpdir(), 'overlord-image-'))
  const image: ImageLayout = {
    root,
    workdir: root,
    env: {},
    entrypoint: [],
    cmd: [],
    healthcheck: [],
    user: undefined,
  }
  const args: Record<string, string> = {}
  const expand = (s: string) => interpolate(s, { ...args, ...image.env })
  const inImage = (p: string) => (p.startsWith('/') ? join(root, p) : join(image.workdir, p))
  for (const { keyword, args: text } of final.instructions) {
    if (keyword === 'WORKDIR') image.workdir = inImage(text)
    else if (keyword === 'ARG') {
      const [name = '', fallback] = text.split('=')
      args[name] = buildArgs[name] ?? fallback ?? ''
    } else if (keyword === 'ENV') {
      for (const pair of text.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g) ?? []) {
        const [name = '', ...value] = pair.split('=')
        image.env[name] = expand(value.join('=').replace(/^"|"$/g, ''))
      }
    } else if (keyword === 'USER') image.user = text
    else if (keyword === 'ENTRYPOINT') image.entrypoint = execForm(text)
    else if (keyword === 'CMD') image.cmd = execForm(text)
    else if (keyword === 'HEALTHCHECK') image.healthcheck = execForm(text.replace(/^.*?\bCMD\s+/, ''))
    else if (keyword === 'COPY') {
      const words = text.split(/\s+/)
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length)
      const [dest = '', ...sources] = words.filter((w) => !w.startsWith('--')).reverse()
      if (from !== undefined) {
        const stage = stages.find((s) => s.name === from)
        const installs = stage?.instructions.some(
          (i) => i.keyword === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args),
        )
        if (!installs || !sources[0]?.endsWith('node_modules'))
          throw new Error(`COPY --from=${from}: only the npm ci --omit=dev node_modules is laid out`)
        await installProduction(dirname(inImage(dest)))
        continue
      }
      for (const source of sources.reverse()) {
        const below = [...context].filter((f) => f.startsWith(`${source.replace(/\/$/, '')}/`))
        if (context.has(source)) {
          const target = dest.endsWith('/') ? join(inImage(dest), basename(source)) : inImage(dest)
          await mkdir(dirname(target), { recursive: true })
          await copyFile(join(ROOT, source), target)
        } else if (below.length > 0) {
          for (const f of below) {
            const target = join(inImage(dest), f.slice(source.replace(/\/$/, '').length + 1))
            await mkdir(dirname(target), { recursive: true })
            await copyFile(join(ROOT, f), target)
          }
        } else throw new Error(`COPY ${source}: not in the build context (see .dockerignore)`)
      }
    }
  }
  return image
}

/** `node` in the image is the node running the tests (both are Node 24). */
const resolveArgv = (argv: readonly string[]): [string, string[]] => [
  argv[0] === 'node' ? process.execPath : argv[0]!,
  argv.slice(1),
]

export interface Process {
  child: ChildProcess
  /** stdout and stderr so far. */
  output(): string
  /** SIGTERM (SIGKILL 20 s later), then the exit code. */
  stop(): Promise<number | null>
}

/** Starts `argv` in the image's working directory with the image's environment and `env` on top. */
export function startInImage(
  image: ImageLayout,
  argv: readonly string[],
  env: Record<string, string>,
): Process {
  const [file, args] = resolveArgv(argv)
  const child = spawn(file, args, {
    cwd: image.workdir,
    env: { PATH: process.env.PATH ?? '', ...image.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  child.stdout?.on('data', (d: Buffer) => {
    text += d
  })
  child.stderr?.on('data', (d: Buffer) => {
    text += d
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    output: () => text,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      // docker's stop: SIGKILL after a grace period (compose gives overlord-ts 20 s).
      const kill = setTimeout(() => child.kill('SIGKILL'), 20_000)
      return exited.finally(() => clearTimeout(kill))
    },
  }
}

/** Runs `argv` in the image to its end: its exit code and output. */
export async function runInImage(
  image: ImageLayout,
  argv: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  const p = startInImage(image, argv, env)
  const [code] = (await once(p.child, 'close')) as [number | null]
  return { code, output: p.output() }
}
