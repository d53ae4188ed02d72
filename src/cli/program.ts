import { Command, CommanderError } from 'commander'
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

/** Exit codes CI can use (issue 4 §7): every command keeps to them, usage errors included. */
export const EXIT = { PARITY: 0, MISMATCH: 1, ERROR: 2 } as const

/** The `code` of every {@link verdict}. */
export const VERDICT_CODE = 'overlord.verdict'

/**
 * A command's answer that is not "yes" (mismatch, no-go, a backend that could not be read): thrown
 * from an action, printed by `main.ts` as its one line, with no usage hint, and exits `exitCode`.
 */
export function verdict(message: string, exitCode: number): CommanderError {
  return new CommanderError(exitCode, VERDICT_CODE, message)
}

/** Builds the `overlord-ts` program; `main.ts` parses `process.argv` with it. */
export function buildProgram(ctx: CliContext, families: readonly RegisterCommands[]): Command {
  const program = new Command('overlord-ts')
    .description('Dereth Tracker shadow: TypeScript tracker, tee, replay and parity harness')
    // Only usage errors go through commander's error(), so only they get the hint; verdicts are
    // thrown (verdict()) and print their line alone.
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (text, write) => write(`overlord-ts: ${text}`) })
    // Commander never exits the process itself: main.ts maps every outcome to an exit code
    // (commands created below inherit this).
    .exitOverride()
  for (const register of families) register(program, ctx)
  return program
}
