import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Listens and resolves the server's base URL (`http://127.0.0.1:41234`, IPv6 in brackets). */
export async function listenUrl(server: Server, port: number, host: string): Promise<string> {
  server.listen(port, host)
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const a = server.address() as AddressInfo
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
}
