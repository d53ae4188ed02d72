import { Command } from 'commander'
import type { Logger } from 'pino'

/** What every command gets from the composition root. */
export interface CliContext {
  env: NodeJS.ProcessEnv
  logger: Logger
  /** Where human-readable output goes (stdout in production, a buffer in tests). */
  out: (line: string) => void
}

/** A command family adds its commands to the program. */
export type RegisterCommands = (program: Command, ctx: CliContext) => void

/** Builds the `overlord-ts` program; `main.ts` parses `process.argv` with it. */
export function buildProgram(ctx: CliContext, families: readonly RegisterCommands[]): Command {
  const program = new Command('overlord-ts')
    .description('Dereth Tracker shadow: TypeScript tracker, tee, replay and parity harness')
    // Verdicts (mismatch, no-go) leave through command.error() with their exit codes; a usage
    // screen after them would bury the verdict, so only a hint follows a usage error.
    .showHelpAfterError('(add --help for usage)')
  for (const register of families) register(program, ctx)
  return program
}
