"""Drop-in tee for the legacy Dereth Tracker (FastAPI): mirrors every raw plugin frame to the
overlord-ts mirror receiver, fire-and-forget.

Off unless ``OVERLORD_TEE_URL`` is set. The hooks (``open``/``frame``/``close``) are plain
synchronous calls that only append a tuple to a bounded deque: they never await, never block the
event loop and never raise. One background task sends batches over a WebSocket and
reconnects with backoff; when the receiver is down or slow the queue fills and further frames are
dropped and counted. Protocol: ``src/tee/envelope.ts`` in overlord-ts.

Environment:
  OVERLORD_TEE_URL        ws://host:port/tee of the mirror receiver (unset = tee off)
  OVERLORD_TEE_SECRET     the receiver's own secret, sent as X-Tee-Secret (not the plugin secret)
  OVERLORD_TEE_QUEUE      bound of the queue in frames (default 10000)
"""

import asyncio
import collections
import itertools
import json
import logging
import os
import secrets
import time

__all__ = ["Tee", "NullTee", "tee_from_env"]

log = logging.getLogger("overlord_tee")

PROTOCOL_VERSION = 1
_OPEN, _FRAME, _CLOSE = 0, 1, 2
# The C string encoder behind json.dumps(str): escapes the raw frame without building a dict.
_quote = getattr(json.encoder, "c_encode_basestring_ascii", None) or json.encoder.encode_basestring_ascii


def _connector():
    """Returns (connect, headers keyword) for the installed websockets (10.x legacy API or 14+)."""
    try:
        from websockets.asyncio.client import connect  # websockets >= 13

        return connect, "additional_headers"
    except ImportError:
        import websockets

        return websockets.connect, "extra_headers"


class NullTee:
    """The disabled tee: same methods, nothing happens."""

    enabled = False

    def start(self):
        pass

    def open(self):
        return 0

    def frame(self, conn, data):
        pass

    def close(self, conn, code=1000):
        pass

    async def stop(self):
        pass

    def stats(self):
        return {}


class Tee:
    """Mirrors plugin frames to the overlord-ts receiver without ever blocking its caller."""

    enabled = True

    def __init__(self, url, secret, max_queue=10000, batch=256, max_backoff=10.0, min_backoff=0.2):
        self.url = url
        self._secret = secret
        self._max_queue = max_queue
        self._batch = batch
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        # A deque and an event rather than asyncio.Queue: appending is a fraction of put_nowait's cost,
        # and the hook is on the live service's request path.
        self._queue = collections.deque()
        self._wakeup = None
        self._task = None
        self._conns = itertools.count(1)
        self._session = secrets.token_hex(8)
        self._last_error_log = 0.0
        self.queued = 0
        self.sent = 0
        self.dropped = 0
        self.lost = 0
        self.connects = 0
        self.errors = 0

    # --- hooks: synchronous, bounded, never raise -------------------------------------------
    def start(self):
        """Starts the background sender; call from the running event loop (FastAPI startup)."""
        try:
            if self._task is None:
                self._wakeup = asyncio.Event()
                if self._queue:
                    self._wakeup.set()
                self._task = asyncio.get_running_loop().create_task(self._run())
        except Exception:  # noqa: BLE001 - the tee must never break the service
            self.errors += 1
            log.exception("overlord tee failed to start")

    def open(self):
        """A plugin connected; returns the connection id to pass to frame() and close()."""
        conn = next(self._conns)
        self._put((_OPEN, conn, time.time() * 1000.0, None))
        return conn

    def frame(self, conn, data):
        """One raw plugin frame (the text exactly as received)."""
        self._put((_FRAME, conn, time.time() * 1000.0, data))

    def close(self, conn, code=1000):
        """The plugin disconnected."""
        self._put((_CLOSE, conn, time.time() * 1000.0, code))

    def _put(self, item):
        try:
            queue = self._queue
            if len(queue) >= self._max_queue:
                self.dropped += 1
                return
            queue.append(item)
            self.queued += 1
            wakeup = self._wakeup
            if wakeup is not None and not wakeup.is_set():
                wakeup.set()
        except Exception:  # noqa: BLE001 - anything at all: drop, never raise
            self.dropped += 1

    def stats(self):
        return {
            "queued": self.queued,
            "sent": self.sent,
            "dropped": self.dropped,
            "lost": self.lost,
            "connects": self.connects,
            "errors": self.errors,
            "pending": len(self._queue),
        }

    async def stop(self):
        """Cancels the sender (FastAPI shutdown); whatever is still queued is discarded."""
        task, self._task = self._task, None
        self._queue.clear()
        if task is not None:
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001
                pass

    # --- the one background sender ----------------------------------------------------------
    @staticmethod
    def _encode(item):
        kind, conn, t, payload = item
        if kind == _FRAME:
            return '{"k":"frame","c":%d,"t":%.3f,"d":%s}' % (conn, t, _quote(payload))
        if kind == _OPEN:
            return '{"k":"open","c":%d,"t":%.3f}' % (conn, t)
        return '{"k":"close","c":%d,"t":%.3f,"code":%d}' % (conn, t, payload if isinstance(payload, int) else 1000)

    async def _run(self):
        connect, headers_kw = _connector()
        hello = json.dumps({"k": "hello", "s": self._session, "v": PROTOCOL_VERSION})
        backoff = self._min_backoff
        while True:
            batch = []
            try:
                kwargs = {headers_kw: {"X-Tee-Secret": self._secret}, "open_timeout": 5, "close_timeout": 1}
                async with connect(self.url, **kwargs) as ws:
                    self.connects += 1
                    backoff = self._min_backoff
                    await ws.send(hello)
                    queue, encode = self._queue, self._encode
                    while True:
                        if not queue:
                            self._wakeup.clear()
                            await self._wakeup.wait()
                            continue
                        batch = [encode(queue.popleft()) for _ in range(min(self._batch, len(queue)))]
                        await ws.send("\n".join(batch))
                        self.sent += len(batch)
                        batch = []
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - receiver down, refused, dropped: retry later
                self.errors += 1
                self.lost += len(batch)
                now = time.monotonic()
                if now - self._last_error_log > 30:
                    self._last_error_log = now
                    log.warning("overlord tee: receiver unavailable (%s); retrying", exc.__class__.__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)


def tee_from_env(environ=None):
    """A started-later Tee when OVERLORD_TEE_URL is set, else a NullTee."""
    env = os.environ if environ is None else environ
    url = env.get("OVERLORD_TEE_URL", "").strip()
    if not url:
        return NullTee()
    return Tee(url, env.get("OVERLORD_TEE_SECRET", ""), max_queue=int(env.get("OVERLORD_TEE_QUEUE", "10000")))
