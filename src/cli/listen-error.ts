import { ERR, OverlordError } from '../protocol/errors.ts'

/**
 * Says why a server could not listen, in the terms of the option that chose the address
 * (`PORT/--port`, `HOST/--host` for `serve`; `--listen` for the tee).
 */
export function listenFailure(
  err: unknown,
  at: { port: number; host: string },
  options: { port: string; host: string },
): OverlordError {
  const code = (err as { code?: unknown }).code
  const message =
    code === 'EADDRINUSE'
      ? `port ${at.port} on ${at.host} is already in use (${options.port})`
      : code === 'EACCES'
        ? `not allowed to listen on port ${at.port} on ${at.host} (${options.port}; ports below 1024 need privileges)`
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? `cannot listen on ${at.host}: not an address of this machine (${options.host})`
          : undefined
  if (message === undefined)
    return new OverlordError(ERR.LISTEN, `cannot listen on ${at.host}:${at.port}`, { cause: err })
  return new OverlordError(ERR.CONFIG, message, { cause: err })
}
