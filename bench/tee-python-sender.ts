/**
 * What the legacy tee costs the live Python tracker per frame (not a test). Runs
 * bench/tee_sender_bench.py three times against a real mirror receiver in this process: without the
 * tee (baseline), with the receiver up, and with it down; prints the hook call time and the process
 * CPU per frame, and the overhead against the baseline. Usage and figures: bench/README.md.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { buildMirrorReceiver } from '../src/tee/mirror-receiver.ts'
import { findPython } from '../test/support/python.ts'
import { freePort } from '../test/support/ws-sink.ts'

const { values: a } = parseArgs({ options: { frames: { type: 'string', default: '100000' } } })
const SECRET = 'bench-tee-secret'
const receiver = buildMirrorReceiver({ teeSecret: SECRET, logger: pino({ level: 'silent' }) })
const url = `${(await receiver.listen()).replace('http', 'ws')}/tee`
const downUrl = `ws://127.0.0.1:${await freePort()}/tee`
const python = findPython()

async function run(scenario: string): Promise<Record<string, number>> {
  const child = spawn(python, [
    'bench/tee_sender_bench.py',
    scenario === 'down' ? downUrl : url,
    SECRET,
    a.frames,
    scenario,
  ])
  let out = ''
  child.stdout.on('data', (d) => {
    out += String(d)
  })
  child.stderr.pipe(process.stderr)
  await once(child, 'exit')
  return JSON.parse(out) as Record<string, number>
}

const results: Record<string, Record<string, number>> = {}
for (const scenario of ['baseline', 'up', 'down']) results[scenario] = await run(scenario)
const base = results.baseline as Record<string, number>
console.log(`frames per scenario: ${a.frames}; receiver counted ${receiver.counters.envelopes} envelopes`)
console.log('scenario   call p50   call p99   call max   CPU/frame   overhead/frame')
for (const [name, r] of Object.entries(results)) {
  const overhead = (r.cpu_us_per_frame as number) - (base.cpu_us_per_frame as number)
  console.log(
    `${name.padEnd(9)} ${`${r.call_ns_p50}ns`.padStart(9)} ${`${r.call_ns_p99}ns`.padStart(10)} ${`${Math.round((r.call_ns_max as number) / 1000)}us`.padStart(10)} ${`${(r.cpu_us_per_frame as number).toFixed(2)}us`.padStart(11)} ${name === 'baseline' ? '' : `${overhead.toFixed(2)}us`.padStart(15)}`,
  )
}
await receiver.close()
