"""A stand-in for the live Python tracker, for bench/primary-load.ts: one asyncio process, one core.

It does what the live service does on its one event loop, from memory instead of TimescaleDB:
  - /ws/position  plugin frames: json.loads, per-type state (CONTRACT.md §2, §6), then a
                  re-broadcast to every /ws/live browser (telemetry typeless, CONTRACT §3),
                  awaited browser by browser inside the plugin's receive loop;
  - /ws/live      browsers (a `subscribe` filter is honoured);
  - the read API of CONTRACT §4 that the comparison engine polls, each answer built from memory
    and serialised by json.dumps per request (so that cost is in); /live from a cache a background
    loop rebuilds every 5 s.
It also measures itself: event-loop lag (a 5 ms sleeper, how late it wakes), CPU seconds and reads
served, in /metrics.json, reset by POST /bench/reset.

  /usr/bin/python3 bench/primary_standin.py --port 0 --secret S [--active-window 30]
prints {"port": N} once listening. Needs Debian's python3-aiohttp.
"""

import argparse
import asyncio
import collections
import heapq
import itertools
import json
import sys
import time
from datetime import datetime, timezone

from aiohttp import WSMsgType, web

STRING_NUMBERS = ("kills_per_hour", "deaths", "total_deaths", "prismatic_taper_count")
# /trails asks for 600 s; /history's hour is served from the same 10 minutes (the live one asks
# the database, so a stand-in holding an hour of 500 frames/s in memory would only measure its GC).
TRAIL_KEEP_S = 600


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def coerce_number(value):
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return None
    return value


def sum_leaves(into, delta):
    for key, value in delta.items():
        if isinstance(value, dict):
            sum_leaves(into.setdefault(key, {}), value)
        elif isinstance(value, (int, float)):
            into[key] = into.get(key, 0) + value


def diff_leaves(new, old):
    out = {}
    for key, value in new.items():
        before = old.get(key) if isinstance(old, dict) else None
        if isinstance(value, dict):
            out[key] = diff_leaves(value, before if isinstance(before, dict) else {})
        elif isinstance(value, (int, float)):
            out[key] = value - (before if isinstance(before, (int, float)) else 0)
    return out


class Tracker:
    def __init__(self, secret, active_window_s):
        self.secret = secret
        self.active_window_s = active_window_s
        self.latest = {}  # character -> telemetry (coerced, without type)
        self.received_at = {}
        self.last_kills = {}  # (character, session) -> kills
        self.total_kills = collections.Counter()
        self.total_rares = collections.Counter()
        self.rares_today = 0
        self.trails = collections.defaultdict(collections.deque)  # character -> (epoch, ew, ns, z, ts)
        self.character_stats = {}
        self.combat_sessions = collections.defaultdict(dict)  # character -> session -> stats
        self.combat_lifetime = {}
        self.quests = {}
        self.portals = {}
        self.spawns = collections.Counter()
        self.peers = {}
        self.browsers = {}  # ws -> set of types, or None for everything
        self.live_cache = []
        self.counters = collections.Counter()
        self.lag_ms = []
        self.own_lag_ms = []
        self.cpu_at_reset = time.process_time()
        self.wall_at_reset = time.monotonic()

    # --- plugin frames -------------------------------------------------------------------

    def handle(self, frame, now):
        kind = frame.get("type")
        name = frame.get("character_name")
        if kind == "telemetry":
            snap = {k: v for k, v in frame.items() if k != "type"}
            for key in STRING_NUMBERS:
                if key in snap:
                    snap[key] = coerce_number(snap[key])
            self.latest[name] = snap
            self.received_at[name] = now
            session = (name, snap.get("session_id"))
            kills = snap.get("kills")
            if isinstance(kills, int):
                last = self.last_kills.get(session)
                if last is not None and kills > last:
                    self.total_kills[name] += kills - last
                self.last_kills[session] = kills
            trail = self.trails[name]
            trail.append((now, snap.get("ew"), snap.get("ns"), snap.get("z"), snap.get("timestamp")))
            while trail and trail[0][0] < now - TRAIL_KEEP_S:
                trail.popleft()
        elif kind == "character_stats":
            self.character_stats[name] = {k: v for k, v in frame.items() if k != "type"}
        elif kind == "combat_stats":
            stats = frame.get("stats") or {}
            session = frame.get("session_id")
            before = self.combat_sessions[name].get(session, {})
            sum_leaves(self.combat_lifetime.setdefault(name, {}), diff_leaves(stats, before))
            self.combat_sessions[name][session] = {"session_id": session, **stats}
        elif kind == "rare":
            self.total_rares[name] += 1
            self.rares_today += 1
        elif kind == "quest":
            self.quests[(name, frame.get("quest_name"))] = (frame.get("countdown"), frame.get("timestamp"))
        elif kind == "portal":
            key = (round(frame.get("ns", 0), 1), round(frame.get("ew", 0), 1))
            self.portals.setdefault(key, {**frame, "discovered_at": iso(now), "discovered_by": name})
        elif kind == "spawn":
            self.spawns[(round(frame.get("ew", 0), 1), round(frame.get("ns", 0), 1))] += 1
        elif isinstance(kind, str) and kind.startswith("share_"):
            self.peers[name] = now

    async def broadcast(self, frame):
        kind = frame.get("type")
        payload = {k: v for k, v in frame.items() if k != "type"} if kind == "telemetry" else frame
        text = json.dumps(payload)
        for ws, wanted in list(self.browsers.items()):
            if wanted is not None and kind not in wanted:
                continue
            try:
                await ws.send_str(text)
            except ConnectionError:
                self.browsers.pop(ws, None)

    async def plugin_socket(self, request):
        if request.headers.get("X-Plugin-Secret") != self.secret:
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse(max_msg_size=8 * 1024 * 1024)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            self.counters["frames_received"] += 1
            try:
                frame = json.loads(msg.data)
            except ValueError:
                self.counters["frames_bad"] += 1
                continue
            if not isinstance(frame, dict) or "type" not in frame:
                self.counters["frames_bad"] += 1
                continue
            self.handle(frame, time.time())
            self.counters["frames_accepted"] += 1
            await self.broadcast(frame)
        return ws

    async def browser_socket(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.browsers[ws] = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("type") == "subscribe":
                    self.browsers[ws] = set(message.get("message_types") or [])
        finally:
            self.browsers.pop(ws, None)
        return ws

    # --- read API ------------------------------------------------------------------------

    def refresh_live(self):
        cutoff = time.time() - self.active_window_s
        players = []
        for name in sorted(self.latest):
            if self.received_at[name] > cutoff:
                players.append(
                    {
                        **self.latest[name],
                        "total_kills": self.total_kills[name],
                        "total_rares": self.total_rares[name],
                    }
                )
        self.live_cache = players

    async def live_loop(self):
        while True:
            self.refresh_live()
            await asyncio.sleep(5)

    async def lag_loop(self):
        # How late a 5 ms sleeper wakes, and how much of that lateness this process spent on the
        # CPU: on a shared machine the rest is time the kernel gave to other work, not our loop.
        loop = asyncio.get_running_loop()
        while True:
            start, cpu = loop.time(), time.process_time()
            await asyncio.sleep(0.005)
            lag = (loop.time() - start - 0.005) * 1000
            self.lag_ms.append(lag)
            self.own_lag_ms.append(min(lag, (time.process_time() - cpu) * 1000))
            if len(self.lag_ms) > 1_000_000:
                del self.lag_ms[:500_000]
                del self.own_lag_ms[:500_000]

    @web.middleware
    async def count_reads(self, request, handler):
        self.counters["reads"] += 1
        return await handler(request)

    def routes(self):
        def js(body, status=200):
            return web.Response(text=json.dumps(body), status=status, content_type="application/json")

        def not_found(what):
            return js({"detail": f"{what} not found"}, 404)

        async def live(request):
            return js({"players": self.live_cache})

        async def stats(request):
            name = request.match_info["name"]
            snap = self.latest.get(name)
            if snap is None:
                return not_found("Character")
            return js(
                {
                    "character_name": name,
                    "latest_snapshot": snap,
                    "total_kills": self.total_kills[name],
                    "total_rares": self.total_rares[name],
                }
            )

        async def trails(request):
            cutoff = time.time() - float(request.query.get("seconds", 600))
            out = []
            for name in sorted(self.trails):
                for at, ew, ns, z, ts in self.trails[name]:
                    if at >= cutoff:
                        out.append({"character_name": name, "ew": ew, "ns": ns, "z": z, "timestamp": ts})
            return js({"trails": out})

        async def history(request):
            # The live service asks the database for the first 10 000 rows in time order; here the
            # per-character trails (each already in time order) are merged lazily to the same end.
            since = request.query.get("from", "")
            per_character = (
                ((ts or "", name, ew, ns, z) for _, ew, ns, z, ts in trail if (ts or "") >= since)
                for name, trail in self.trails.items()
            )
            rows = itertools.islice(heapq.merge(*per_character, key=lambda row: row[0]), 10_000)
            data = [
                {"character_name": n, "timestamp": ts, "kills": None, "kills_per_hour": None, "ew": ew, "ns": ns, "z": z}
                for ts, n, ew, ns, z in rows
            ]
            return js({"data": data})

        async def character_stats(request):
            name = request.match_info["name"]
            found = self.character_stats.get(name)
            return js(found) if found is not None else not_found("Character stats")

        async def character_stats_list(request):
            return js(
                {
                    "characters": [
                        {"character_name": n, "level": s.get("level"), "timestamp": s.get("timestamp")}
                        for n, s in sorted(self.character_stats.items())
                    ]
                }
            )

        async def combat_stats(request):
            name = request.match_info["name"]
            sessions = self.combat_sessions.get(name) or {}
            session = list(sessions.values())[-1] if sessions else None
            return js({"character_name": name, "session": session, "lifetime": self.combat_lifetime.get(name)})

        async def total_kills(request):
            return js({"total": sum(self.total_kills.values())})

        async def total_rares(request):
            return js({"all_time": sum(self.total_rares.values()), "today": self.rares_today})

        async def quest_status(request):
            return js(
                {
                    "quest_data": [
                        {"character_name": n, "quest_name": q, "countdown": c, "last_updated": ts}
                        for (n, q), (c, ts) in sorted(self.quests.items())
                    ]
                }
            )

        async def portals(request):
            return js({"portals": sorted(self.portals.values(), key=lambda p: p.get("portal_name", ""))})

        async def heatmap(request):
            points = [{"ew": ew, "ns": ns, "intensity": n} for (ew, ns), n in self.spawns.most_common(10_000)]
            return js({"spawn_points": points, "hours_window": 24, "total_points": len(points)})

        async def peers(request):
            return js({"peers": [{"character_name": n, "last_seen": iso(t)} for n, t in sorted(self.peers.items())]})

        async def server_health(request):
            return js({"server_name": None, "status": "unknown", "latency_ms": None, "player_count": 0, "last_check": None})

        async def health(request):
            return js({"status": "ok"})

        async def version(request):
            return js({"version": "stand-in"})

        async def metrics(request):
            def summary(samples):
                ordered = sorted(samples)

                def at(q):
                    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None

                return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": at(1)}

            return js(
                {
                    **self.counters,
                    "cpu_s": round(time.process_time() - self.cpu_at_reset, 3),
                    "wall_s": round(time.monotonic() - self.wall_at_reset, 3),
                    "loop_lag_ms": summary(self.lag_ms),
                    "own_loop_lag_ms": summary(self.own_lag_ms),
                    "browsers": len(self.browsers),
                }
            )

        async def reset(request):
            self.lag_ms = []
            self.own_lag_ms = []
            self.cpu_at_reset = time.process_time()
            self.wall_at_reset = time.monotonic()
            self.counters["reads"] = 0
            return js({"ok": True})

        return [
            web.get("/ws/position", self.plugin_socket),
            web.get("/ws/live", self.browser_socket),
            web.get("/live", live),
            web.get("/trails", trails),
            web.get("/history", history),
            web.get("/stats/{name}", stats),
            web.get("/total-kills", total_kills),
            web.get("/total-rares", total_rares),
            web.get("/character-stats/list", character_stats_list),
            web.get("/character-stats/{name}", character_stats),
            web.get("/combat-stats/{name}", combat_stats),
            web.get("/quest-status", quest_status),
            web.get("/portals", portals),
            web.get("/spawns/heatmap", heatmap),
            web.get("/vital-sharing/peers", peers),
            web.get("/server-health", server_health),
            web.get("/health", health),
            web.get("/api-version", version),
            web.get("/metrics.json", metrics),
            web.post("/bench/reset", reset),
        ]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--active-window", type=float, default=30.0)
    args = parser.parse_args()

    tracker = Tracker(args.secret, args.active_window)
    app = web.Application(middlewares=[tracker.count_reads])
    app.add_routes(tracker.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    tasks = [asyncio.create_task(tracker.live_loop()), asyncio.create_task(tracker.lag_loop())]
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
