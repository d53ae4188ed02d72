import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify'

/** FastAPI's `detail` for a status with nothing more specific to say: the reason phrase. */
export function reasonPhrase(status: number): string {
  return status >= 500 ? 'Internal Server Error' : (STATUS_CODES[status] ?? 'Error')
}

/** The status Node itself gives an HTTP parser error (lib/_http_server.js, socketOnError). */
function parserErrorStatus(code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408
    default:
      return 400
  }
}

/**
 * fastify's `clientErrorHandler`: a request the HTTP parser refuses (431 for oversized headers,
 * 400 for a malformed request) answers in FastAPI's shape `{"detail": ...}` (CONTRACT.md §1), not
 * fastify's `{"error","message","statusCode"}`. There is no request or reply yet: the answer is
 * written to the socket, which is then closed, as fastify's default handler does.
 */
export function createClientErrorHandler(log: FastifyBaseLogger) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const status = parserErrorStatus(err.code)
    log.debug({ err, status }, 'client error')
    if (socket.writable) {
      const body = JSON.stringify({ detail: reasonPhrase(status) })
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy(err)
  }
}

/**
 * fastify's `frameworkErrors`: errors raised before routing (FST_ERR_BAD_URL for a malformed
 * percent-encoding, FST_ERR_ASYNC_CONSTRAINT) answer in FastAPI's shape with their own status.
 */
export function frameworkErrors(error: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode ?? 400
  if (status >= 500) req.log.error({ err: error }, 'request failed before routing')
  reply.code(status).send({ detail: reasonPhrase(status) })
}
