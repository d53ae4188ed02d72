import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Command } from 'commander'
import { ERR, OverlordError } from '../../protocol/errors.ts'
import { readCapture } from '../../capture/reader.ts'
import { type ReplayResult, replayCapture } from '../../replay/replay-driver.ts'
import { loadJudge } from '../../replay/snapshot-compare.ts'
import { VirtualClock } from '../../replay/virtual-clock.ts'
import { buildTracker } from '../../tracker/build-tracker.ts'
import type { CliContext } from '../program.ts'
import { PRIMARY_DATABASE, SHADOW_DATABASE } from '../tracker-config.ts'
import { parseSpeed } from './tee-options.ts'

interface ReplayFlags {
  speed: string
  databaseUrl?: string
  report?: string
  ignore?: string[]
  rules: string
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

/** A replay needs an empty scratch database: never the primary's, never the shadow's. */
function scratchDatabase(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const name = decodeURIComponent(new URL(url).pathname.slice(1))
  if (name === PRIMARY_DATABASE || name === SHADOW_DATABASE || name === '') {
    throw new OverlordError(
      ERR.CONFIG,
      `replay writes its database: give it a scratch one, not "${name || '(none)'}"`,
    )
  }
  return url
}

/** Replays one capture into a fresh tracker on virtual time. */
export async function replayFile(
  path: string,
  o: { databaseUrl?: string; speed: number; ignore?: string[]; rules: string; ctx: CliContext },
): Promise<ReplayResult> {
  const capture = await readCapture(path)
  // On stderr, beside the verdict rather than in it: the complete part still replays.
  if (capture.warning !== undefined) process.stderr.write(`${capture.warning}\n`)
  const clock = new VirtualClock(capture.events[0]?.t ?? 0)
  const secret = randomBytes(16).toString('hex')
  const logger = o.ctx.logger.child({ component: 'replay', capture: path })
  const tracker = await buildTracker({
    databaseUrl: scratchDatabase(o.databaseUrl),
    sharedSecret: secret,
    clock,
    logger,
    // The /live cache is refreshed by settle() at each snapshot instant, never by wall-clock timers.
    liveCacheMs: 24 * 3_600_000,
  })
  try {
    const baseUrl = await tracker.listen(0, '127.0.0.1')
    let lastShown = 0
    return await replayCapture({
      capture,
      logger,
      speed: o.speed,
      ignoreEndpoints: o.ignore,
      judge: await loadJudge(o.rules),
      target: { baseUrl, secret, clock, settle: () => tracker.settle() },
      onProgress: (done, total) => {
        if (done === total || performance.now() - lastShown > 2000) {
          lastShown = performance.now()
          o.ctx.out(`replay ${path}: ${done}/${total} events`)
        }
      },
    })
  } finally {
    await tracker.close()
  }
}

/** `replay <files...>`: exit code 1 when any snapshot differs. */
export function registerReplay(program: Command, ctx: CliContext): void {
  program
    .command('replay')
    .description('replay captures into a fresh tracker on virtual time and compare with the recorded primary')
    .argument('<files...>', 'capture files (.ndjson or .ndjson.gz)')
    .option('--speed <factor>', 'virtual ms per real ms, or max', 'max')
    .option('--database-url <url>', 'an empty scratch PostgreSQL database (default: embedded, in memory)')
    .option('--report <file>', 'write the full results as JSON')
    .option('--ignore <path>', 'an endpoint not to compare (repeatable)', collect)
    .option('--rules <dir>', 'comparison rules, manifest and waivers (the comparison engine)', 'compare')
    .action(async (files: string[], flags: ReplayFlags) => {
      const results: Record<string, ReplayResult> = {}
      let failed = 0
      for (const file of files) {
        const result = await replayFile(file, {
          databaseUrl: flags.databaseUrl,
          speed: parseSpeed(flags.speed),
          ignore: flags.ignore,
          rules: flags.rules,
          ctx,
        })
        results[file] = result
        if (!result.equal) failed += 1
        ctx.out(
          `${result.equal ? 'EQUAL' : 'DIFFERENT'} ${file}: ${result.frames} frames, ${result.connections} connections, ` +
            `${result.compared - result.mismatched}/${result.compared} endpoint snapshots equal`,
        )
        for (const s of result.snapshots) {
          for (const e of s.endpoints.filter((x) => !x.equal)) {
            ctx.out(`  +${s.offset_ms}ms ${e.path}: ${JSON.stringify(e.differences.slice(0, 3))}`)
          }
        }
      }
      if (flags.report !== undefined) {
        await mkdir(dirname(flags.report), { recursive: true })
        await writeFile(flags.report, `${JSON.stringify(results, null, 2)}\n`)
      }
      if (failed > 0) {
        process.exitCode = 1
        ctx.out(`${failed} of ${files.length} captures differ`)
      }
    })
}
