"""Per-frame cost of legacy/overlord_tee.py on the sender (run by bench/tee-python-sender.ts).

For each scenario, plays N realistic plugin frames through the hooks on a running asyncio loop,
yielding every 100 frames as a service does between requests, then waits for the background sender to
drain. Reports the hook call time (what the request path pays) and the whole process CPU per frame
(hook + background batching and sending), against a baseline without the tee.

  python3 tee_sender_bench.py URL SECRET N scenario   (scenario: baseline | up | down)
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "legacy"))
from overlord_tee import NullTee, Tee  # noqa: E402


def frame(i):
    return json.dumps(
        {
            "type": "telemetry",
            "character_name": "Larsson",
            "char_tag": "MM",
            "session_id": "Larsson-5f2a",
            "timestamp": "2026-11-22T08:10:02.120Z",
            "ew": 33.61 + i * 1e-4,
            "ns": 42.1,
            "z": 0.01,
            "kills": i,
            "kills_per_hour": "340.5",
            "onlinetime": "01:02:03",
            "deaths": "3",
            "total_deaths": "57",
            "rares_found": 2,
            "prismatic_taper_count": "120",
            "vt_state": "Combat",
            "mem_mb": 512.3,
            "cpu_pct": 12.5,
            "mem_handles": 1400,
            "latency_ms": 48.2,
        }
    )


async def main():
    url, secret, n, scenario = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    # "up" holds every frame so none is dropped while the sender catches up; "down" uses the default bound.
    tee = NullTee() if scenario == "baseline" else Tee(url, secret, max_queue=n if scenario == "up" else 10000)
    tee.start()
    conn = tee.open()
    if scenario == "up":
        while tee.stats().get("connects", 0) == 0:
            await asyncio.sleep(0.01)
    frames = [frame(i) for i in range(n)]
    calls = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for i, data in enumerate(frames):
        t0 = time.perf_counter_ns()
        tee.frame(conn, data)
        calls.append(time.perf_counter_ns() - t0)
        if i % 100 == 99:
            await asyncio.sleep(0)
    if scenario == "up":
        while tee.stats()["sent"] < n + 1:
            await asyncio.sleep(0.001)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    calls.sort()
    out = {
        "scenario": scenario,
        "frames": n,
        "call_ns_p50": calls[len(calls) // 2],
        "call_ns_p99": calls[int(len(calls) * 0.99)],
        "call_ns_max": calls[-1],
        "cpu_us_per_frame": cpu / n * 1e6,
        "wall_s": wall,
        "stats": tee.stats(),
    }
    sys.stdout.write(json.dumps(out) + "\n")
    await tee.stop()


if __name__ == "__main__":
    asyncio.run(main())
