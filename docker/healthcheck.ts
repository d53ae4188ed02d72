/**
 * The containers' health checks (the Dockerfile's HEALTHCHECK, docker-compose.shadow.yml), in node
 * because the slim image has no curl. Exits 0 when healthy, 1 when not, with one line saying why.
 *
 *   node docker/healthcheck.ts                        GET http://127.0.0.1:$PORT/health (PORT 8766)
 *   node docker/healthcheck.ts <url>                  GET <url>: healthy on a 2xx within 4 s
 *   node docker/healthcheck.ts --fresh <file> <secs>  <file> was modified in the last <secs> seconds
 *                                                     (the watcher's ledger: a sweep was recorded)
 */
import { stat } from 'node:fs/promises'

const TIMEOUT_MS = 4_000

/** Why `args` describe an unhealthy service, or `undefined` when it is healthy. */
export async function unhealthy(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  if (args[0] === '--fresh') {
    const [, file, secs] = args
    const maxAgeMs = Number(secs) * 1000
    if (file === undefined || !(maxAgeMs > 0)) return 'usage: --fresh <file> <seconds>'
    try {
      const ageMs = Date.now() - (await stat(file)).mtimeMs
      return ageMs <= maxAgeMs ? undefined : `${file} last written ${Math.round(ageMs / 1000)} s ago`
    } catch (err) {
      return `${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`
    }
  }
  const url = args[0] ?? `http://127.0.0.1:${env.PORT || 8766}/health`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    await res.body?.cancel()
    return res.ok ? undefined : `${url}: HTTP ${res.status}`
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    return `${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`
  }
}

if (import.meta.main) {
  const why = await unhealthy(process.argv.slice(2), process.env)
  if (why !== undefined) process.stderr.write(`unhealthy: ${why}\n`)
  process.exitCode = why === undefined ? 0 : 1
}
