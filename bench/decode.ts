/**
 * Frame decoding alone (not a test): decodeFrame on a fleet-shaped mix, no sockets, no database.
 * Usage and recorded figures: bench/README.md.
 */
import { parseArgs } from 'node:util'
import { decodeFrame } from '../src/protocol/decode-frame.ts'

const { values: a } = parseArgs({ options: { frames: { type: 'string', default: '2000000' } } })
const N = Number(a.frames)
const at = new Date().toISOString()
const telemetry = (i: number) =>
  `{"type":"telemetry","character_name":"Bench ${i % 70}","char_tag":"b","session_id":"s","timestamp":"${at}","ew":${i % 100},"ns":-12.5,"z":0,"kills":${i},"kills_per_hour":"340.5","onlinetime":"00:01:00","deaths":"0","total_deaths":"3","rares_found":0,"prismatic_taper_count":"57","vt_state":"Combat","t":${i}}`
const MIX = [
  ...Array.from({ length: 17 }, (_, i) => telemetry(i)),
  '{"type":"vitals","character_name":"Bench 1","health_current":100,"health_max":120,"vitae":0}',
  '{"type":"chat","character_name":"Bench 2","text":"hello there","channel":"General"}',
  '{"type":"rare","character_name":"Bench 3","name":"Gem","ew":1,"ns":2,"z":0}',
]
let accepted = 0
const start = process.hrtime.bigint()
for (let i = 0; i < N; i++) if (decodeFrame(MIX[i % MIX.length]!, 1).ok) accepted += 1
const ns = Number(process.hrtime.bigint() - start) / N
console.log(
  JSON.stringify({ frames: N, accepted, ns_per_frame: Math.round(ns), frames_per_s: Math.round(1e9 / ns) }),
)
