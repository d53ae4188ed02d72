import { formatInstant } from '../protocol/time.ts'
import type { Db } from './pool.ts'
import type { WriteOp } from './write-ops.ts'

/**
 * A writer that died between its commit and its acknowledgement leaves the bus to deliver those
 * frames again (issue 11). Telemetry carries its receive instant to the microsecond, so a row
 * already stored with the same character and `received_at` is that frame: it and its kills
 * increment are not written twice. Returns the ops still to write. Called only for redelivered
 * messages, so the lookup stays off the steady path.
 */
export async function withoutCommitted(db: Db, ops: readonly WriteOp[]): Promise<WriteOp[]> {
  const names: string[] = []
  const instants: string[] = []
  for (const op of ops) {
    if (op.kind !== 'telemetry') continue
    names.push(op.row.character_name)
    instants.push(formatInstant(op.row.received_at))
  }
  if (names.length === 0) return [...ops]
  const { rows } = await db.query<{ i: string }>(
    `SELECT f.i FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS f(name, at, i)
      WHERE EXISTS (SELECT 1 FROM telemetry_events t WHERE t.received_at = f.at AND t.character_name = f.name)`,
    [names, instants],
  )
  if (rows.length === 0) return [...ops]
  const stored = new Set(rows.map((r) => Number(r.i) - 1))
  const out: WriteOp[] = []
  let telemetry = -1
  let skipping = false
  for (const op of ops) {
    if (op.kind === 'telemetry') {
      telemetry += 1
      skipping = stored.has(telemetry)
      if (skipping) continue
    } else if (op.kind === 'kills' && skipping) {
      // The increment made from the frame just skipped: it committed with it.
      continue
    } else {
      skipping = false
    }
    out.push(op)
  }
  return out
}
