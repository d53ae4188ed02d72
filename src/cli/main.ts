import pino from 'pino'
import { registerCompareCommands } from './commands/compare.ts'
import { registerReplay } from './commands/replay.ts'
import { registerServe } from './commands/serve.ts'
import { registerSimulate } from './commands/simulate.ts'
import { registerTee } from './commands/tee.ts'
import { buildProgram } from './program.ts'

// The composition root: the only place that reads process.argv/process.env and exits.
const logger = pino({ level: process.env.LOG_LEVEL?.toLowerCase() ?? 'info' })
const program = buildProgram({ env: process.env, logger, out: (line) => process.stdout.write(`${line}\n`) }, [
  registerServe,
  registerCompareCommands,
  registerTee,
  registerReplay,
  registerSimulate,
])

try {
  await program.parseAsync(process.argv)
} catch (err) {
  logger.error({ err }, 'command failed')
  process.exitCode = 2
}
