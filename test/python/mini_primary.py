"""A stand-in for the legacy tracker's plugin endpoint, wired to overlord_tee exactly as
legacy/README.md tells the live main.py to be: it checks the plugin secret, then calls
TEE.open / TEE.frame / TEE.close around its receive loop. It prints its port, then counts.

  python3 mini_primary.py PLUGIN_SECRET   (OVERLORD_TEE_URL / OVERLORD_TEE_SECRET from the environment)
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "legacy"))
from overlord_tee import tee_from_env  # noqa: E402

import websockets  # noqa: E402

TEE = tee_from_env()
SECRET = sys.argv[1]
received = {"frames": 0}


def presented_secret(ws, path):
    headers = getattr(ws, "request_headers", None) or ws.request.headers
    if headers.get("X-Plugin-Secret"):
        return headers.get("X-Plugin-Secret")
    path = path or ws.request.path
    if "secret=" in path:
        return path.split("secret=", 1)[1].split("&", 1)[0]
    return None


async def ws_receive_snapshots(ws, path=None):
    if presented_secret(ws, path) != SECRET:
        await ws.close(code=1008, reason="invalid plugin secret")
        return
    tee_conn = TEE.open()
    try:
        async for data in ws:
            TEE.frame(tee_conn, data)
            received["frames"] += 1
    finally:
        TEE.close(tee_conn)


async def main():
    TEE.start()
    async with websockets.serve(ws_receive_snapshots, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sys.stdout.write(json.dumps({"port": port}) + "\n")
        sys.stdout.flush()
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while (await reader.readline()).strip() != b"quit":
            pass
        sys.stdout.write(json.dumps({"frames": received["frames"], "tee": TEE.stats()}) + "\n")
        sys.stdout.flush()
    await TEE.stop()


asyncio.run(main())
