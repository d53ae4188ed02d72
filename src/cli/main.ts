import cluster from 'node:cluster'
import pino from 'pino'
import { registerCompareCommands } from './commands/compare.ts'
import { registerCutover } from './commands/cutover.ts'
import { registerReplay } from './commands/replay.ts'
import { registerServe } from './commands/serve.ts'
import { registerShadowRead } from './commands/shadow-read.ts'
import { registerSimulate } from './commands/simulate.ts'
import { registerTee } from './commands/tee.ts'
import { registerUsers } from './commands/users.ts'
import { describeFailure } from './failure.ts'
import { buildProgram } from './program.ts'

// The composition root: the only place that reads process.argv/process.env and exits.
const logger = pino({ level: process.env.LOG_LEVEL?.toLowerCase() ?? 'info' })
const program = buildProgram({ env: process.env, logger, out: (line) => process.stdout.write(`${line}\n`) }, [
  registerServe,
  registerCompareCommands,
  registerCutover,
  registerTee,
  registerReplay,
  registerSimulate,
  registerShadowRead,
  registerUsers,
])

try {
  await program.parseAsync(process.argv)
} catch (err) {
  // A person reads this: one line on stderr, never a JSON record with a stack, unless it is a bug.
  const failure = describeFailure(err)
  if (failure.internal) logger.error({ err }, 'command failed')
  if (failure.line !== undefined) process.stderr.write(`${failure.line}\n`)
  process.exitCode = failure.exitCode
}
// A `serve --workers` worker keeps an IPC channel to its supervisor, which would keep it alive
// after its command ended (or failed at start-up): let it go.
if (cluster.isWorker) process.disconnect()
