import { CommanderError } from 'commander'
import { describe, expect, it } from 'vitest'
import { ERR, OverlordError } from '../protocol/errors.ts'
import { describeFailure } from './failure.ts'
import { verdict } from './program.ts'

const systemError = (message: string, code: string) =>
  Object.assign(new Error(message), { code, syscall: 'x' })

describe('describeFailure', () => {
  it('a verdict exits with its own code and prints its line as is', () => {
    expect(describeFailure(verdict('cutover: NO-GO', 1))).toEqual({
      exitCode: 1,
      line: 'cutover: NO-GO',
      internal: false,
    })
  })

  it('usage errors exit 2 (never 1, which means mismatch), help exits 0; commander printed them', () => {
    const usage = new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")
    expect(describeFailure(usage)).toEqual({ exitCode: 2, line: undefined, internal: false })
    const help = new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)')
    expect(describeFailure(help).exitCode).toBe(0)
  })

  it('a configuration error is its own message; another error of ours carries its cause', () => {
    const cause = systemError('listen EADDRINUSE: address already in use 127.0.0.1:8766', 'EADDRINUSE')
    const config = new OverlordError(ERR.CONFIG, 'port 8766 on 127.0.0.1 is already in use (PORT/--port)', {
      cause,
    })
    expect(describeFailure(config)).toEqual({
      exitCode: 2,
      line: 'overlord-ts: port 8766 on 127.0.0.1 is already in use (PORT/--port)',
      internal: false,
    })
    const unreachable = new OverlordError(ERR.DB_UNAVAILABLE, 'database unavailable at start-up', {
      cause: systemError('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED'),
    })
    expect(describeFailure(unreachable).line).toBe(
      'overlord-ts: database unavailable at start-up: connect ECONNREFUSED 127.0.0.1:9',
    )
  })

  it("net's message-less AggregateError, a PostgreSQL refusal and a bad URL are the user's, on one line", () => {
    const refused = Object.assign(
      new AggregateError([systemError('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED')], ''),
      {
        code: 'ECONNREFUSED',
      },
    )
    expect(describeFailure(refused).line).toBe('overlord-ts: connect ECONNREFUSED ::1:5432')
    const pgError = Object.assign(new Error('password authentication failed\nfor user "x"'), {
      code: '28P01',
      severity: 'FATAL',
    })
    expect(describeFailure(pgError)).toEqual({
      exitCode: 2,
      line: 'overlord-ts: password authentication failed for user "x"',
      internal: false,
    })
    const url = Object.assign(new TypeError('Invalid URL'), {
      code: 'ERR_INVALID_URL',
      input: 'pg//me:secret@h',
    })
    expect(describeFailure(url).line).toBe('overlord-ts: Invalid URL: pg//…@h')
  })

  it('anything else is a bug: logged with its stack, then summarised on one line', () => {
    const bug = describeFailure(new TypeError("Cannot read properties of undefined (reading 'x')"))
    expect(bug.internal).toBe(true)
    expect(bug.exitCode).toBe(2)
    expect(bug.line).toMatch(/^overlord-ts: internal error: Cannot read properties of undefined/)
    expect(bug.line).not.toContain('\n')
  })
})
