"""Drives legacy/overlord_tee.py from a test: commands on stdin, one JSON line per reply on stdout.

  send N TAG      N frames, alternating over the open connections (seq numbers keep counting)
  stats           the tee's counters plus the loop heartbeat count
  close           mirror the plugin disconnects
  quit
"""

import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "legacy"))
from overlord_tee import Tee  # noqa: E402

state = {"ticks": 0, "seq": 0}


async def heartbeat():
    while True:
        state["ticks"] += 1
        await asyncio.sleep(0.005)


def reply(tee, **extra):
    out = {"stats": tee.stats(), "ticks": state["ticks"], **extra}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


async def main():
    url, secret = sys.argv[1], sys.argv[2]
    max_queue = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    tee = Tee(url, secret, max_queue=max_queue, min_backoff=0.05, max_backoff=0.2)
    tee.start()
    beat = asyncio.get_running_loop().create_task(heartbeat())
    conns = [tee.open(), tee.open()]
    names = ["Larsson", "Brim Ironfist"]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    reply(tee, ready=True)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            break
        cmd = line.split()
        if cmd[0] == "send":
            n, tag = int(cmd[1]), cmd[2]
            slowest = 0.0
            for _ in range(n):
                state["seq"] += 1
                i = state["seq"] % 2
                frame = json.dumps(
                    {"type": "telemetry", "character_name": names[i], "seq": state["seq"], "tag": tag}
                )
                t0 = time.perf_counter()
                tee.frame(conns[i], frame)
                slowest = max(slowest, time.perf_counter() - t0)
                if state["seq"] % 50 == 0:
                    await asyncio.sleep(0)  # a service yields between requests
            reply(tee, sent=n, tag=tag, slowest_call_us=slowest * 1e6)
        elif cmd[0] == "close":
            for c in conns:
                tee.close(c, 1000)
            reply(tee, closed=len(conns))
        else:
            reply(tee, stats_only=True)
    beat.cancel()
    await tee.stop()


asyncio.run(main())
