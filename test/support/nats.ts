import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { freePort, waitFor } from './ws-sink.ts'

/** The machine's NATS server (JetStream on): the one the issue names; `.ci/run` starts it when down. */
export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222'

/** A bus name no other test or run shares: its stream, subjects and lease are its own. */
export const uniqueBusName = (): string => `t${randomBytes(5).toString('hex')}`

/** Deletes a bus's stream and lease bucket from the server (tests leave nothing behind). */
export async function destroyBus(name: string, url = NATS_URL): Promise<void> {
  const nc = await connect({ servers: url })
  try {
    const jsm = await jetstreamManager(nc)
    await jsm.streams.delete(`${name.toUpperCase()}_FRAMES`).catch(() => {})
    await jsm.streams.delete(`KV_${name}_lease`).catch(() => {})
  } finally {
    await nc.close()
  }
}

/** A NATS server of the test's own (JetStream, its own store), which the test may stop and start again. */
export interface OwnNats {
  url: string
  stop(): Promise<void>
  start(): Promise<void>
  close(): Promise<void>
}

export async function startOwnNats(): Promise<OwnNats> {
  const dir = await mkdtemp(join(tmpdir(), 'overlord-nats-'))
  const port = await freePort()
  let child: ChildProcess | undefined
  const reachable = async (): Promise<boolean> => {
    try {
      const nc = await connect({ servers: `127.0.0.1:${port}`, timeout: 500 })
      await nc.close()
      return true
    } catch {
      return false
    }
  }
  const own: OwnNats = {
    url: `nats://127.0.0.1:${port}`,
    async start() {
      child = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
        stdio: 'ignore',
      })
      await waitFor('own nats-server', reachable, 10_000)
    },
    async stop() {
      if (child === undefined || child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    },
    async close() {
      await own.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  await own.start()
  return own
}
