import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

/** Connections the embedded server accepts; the tracker's pool uses the same number. */
export const EMBEDDED_POOL_SIZE = 2

/** A PostgreSQL that needs no server: PGlite (WASM) behind the wire protocol on a loopback port. */
export interface EmbeddedDatabase {
  connectionString: string
  close(): Promise<void>
}

/**
 * Starts PGlite keeping its data in `dataDir` (in memory when omitted) and serves it on
 * 127.0.0.1 so the same `pg` code path serves both the embedded default and a real server.
 */
export async function startEmbeddedDatabase(dataDir?: string): Promise<EmbeddedDatabase> {
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true })
  const db = await PGlite.create(dataDir)
  // The socket server multiplexes its connections onto PGlite's single session, keeping a
  // transaction's statements together, so a small pool works as against a real server.
  const server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: 0,
    maxConnections: EMBEDDED_POOL_SIZE,
  })
  await server.start()
  return {
    connectionString: `postgres://postgres@${server.getServerConn()}/postgres`,
    async close() {
      await server.stop()
      await db.close()
    },
  }
}
