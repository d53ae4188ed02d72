"""The legacy Python tracker as CONTRACT.md describes it, on PostgreSQL: the "primary" of the cutover
and rollback tests. Written the way the live service is (FastAPI + uvicorn + asyncpg, one process,
one event loop, one insert per frame), so that what it stores and serves is the reference the
TypeScript tracker is held to.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/dereth SHARED_SECRET=s \
  /usr/bin/python3 test/python/legacy_tracker.py --port 0 --host 127.0.0.1

Environment: DATABASE_URL, SHARED_SECRET, SHARED_SECRET_LEGACY, SKIP_SCHEMA_INIT, BUILD_VERSION,
SECRET_KEY (reads accept internal trust, or with it an itsdangerous `session` cookie).
Prints one line {"port": N} on stdout once listening; logs go to stderr. Needs Debian's
python3-fastapi, python3-uvicorn and python3-asyncpg.

Besides the contract's routes it serves /metrics.json (frame counters; internal trust only) so a
test knows when its frames have been handled: every frame is persisted before it is counted.
"""

import argparse
import asyncio
import collections
import hmac
import ipaddress
import json
import logging
import os
import socket
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Optional
from urllib.parse import urlparse, urlunparse

import asyncpg
import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

# The drop-in tee, imported as legacy/README.md tells the live main.py to (off unless OVERLORD_TEE_URL).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "legacy"))
from overlord_tee import tee_from_env  # noqa: E402

log = logging.getLogger("legacy_tracker")

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dereth")
SHARED_SECRET = os.environ.get("SHARED_SECRET", "")
SHARED_SECRET_LEGACY = os.environ.get("SHARED_SECRET_LEGACY", "")
SKIP_SCHEMA_INIT = os.environ.get("SKIP_SCHEMA_INIT", "").lower() in ("1", "true", "yes")
BUILD_VERSION = os.environ.get("BUILD_VERSION", "dev")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
SESSION_COOKIE = "session"
SESSION_MAX_AGE_S = 30 * 24 * 3600

ACTIVE_WINDOW = timedelta(seconds=30)
LIVE_REFRESH_S = 5
RETENTION_INTERVAL_S = 60
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_HISTORY_ROWS = 10_000

# CONTRACT.md §1: the plugin sends these as strings.
STRING_NUMBERS = ("kills_per_hour", "deaths", "total_deaths", "prismatic_taper_count")

# CONTRACT.md §8, plain PostgreSQL (no TimescaleDB here: retention is the periodic delete below).
SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_events (
    id BIGSERIAL,
    character_name TEXT NOT NULL,
    char_tag TEXT,
    session_id TEXT,
    timestamp TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ,
    ew DOUBLE PRECISION,
    ns DOUBLE PRECISION,
    z DOUBLE PRECISION,
    kills INTEGER,
    kills_per_hour DOUBLE PRECISION,
    onlinetime TEXT,
    deaths INTEGER,
    total_deaths INTEGER,
    rares_found INTEGER,
    prismatic_taper_count INTEGER,
    vt_state TEXT,
    mem_mb DOUBLE PRECISION,
    cpu_pct DOUBLE PRECISION,
    mem_handles INTEGER,
    latency_ms DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS ix_telemetry_events_character_timestamp
    ON telemetry_events (character_name, timestamp DESC);

CREATE TABLE IF NOT EXISTS spawn_events (
    id BIGSERIAL,
    character_name TEXT NOT NULL,
    mob TEXT,
    timestamp TIMESTAMPTZ NOT NULL,
    ew DOUBLE PRECISION,
    ns DOUBLE PRECISION,
    z DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS rare_events (
    id BIGSERIAL PRIMARY KEY,
    character_name TEXT NOT NULL,
    name TEXT,
    timestamp TIMESTAMPTZ NOT NULL,
    ew DOUBLE PRECISION,
    ns DOUBLE PRECISION,
    z DOUBLE PRECISION
);

CREATE TABLE IF NOT EXISTS portals (
    id BIGSERIAL PRIMARY KEY,
    portal_name TEXT NOT NULL,
    ns DOUBLE PRECISION NOT NULL,
    ew DOUBLE PRECISION NOT NULL,
    z DOUBLE PRECISION,
    discovered_at TIMESTAMPTZ NOT NULL,
    discovered_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_portals_rounded_coords
    ON portals ((round(ns::numeric, 1)), (round(ew::numeric, 1)));

CREATE TABLE IF NOT EXISTS char_stats (
    character_name TEXT PRIMARY KEY,
    total_kills BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rare_stats (
    character_name TEXT PRIMARY KEY,
    total_rares BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rare_stats_sessions (
    character_name TEXT NOT NULL,
    session_id TEXT NOT NULL,
    session_rares BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (character_name, session_id)
);

CREATE TABLE IF NOT EXISTS combat_stats (
    character_name TEXT PRIMARY KEY,
    lifetime JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS combat_stats_sessions (
    character_name TEXT NOT NULL,
    session_id TEXT NOT NULL,
    data JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (character_name, session_id)
);

CREATE TABLE IF NOT EXISTS character_stats (
    character_name TEXT PRIMARY KEY,
    timestamp TIMESTAMPTZ NOT NULL,
    level INTEGER,
    total_xp BIGINT,
    unassigned_xp BIGINT,
    luminance_earned BIGINT,
    luminance_total BIGINT,
    deaths INTEGER,
    stats_data JSONB NOT NULL
);

CREATE TABLE IF NOT EXISTS server_status (
    id INTEGER PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    server_name TEXT,
    status TEXT,
    latency_ms DOUBLE PRECISION,
    player_count INTEGER,
    last_check TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS users (
    id SERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""

PLAYER_COLUMNS = (
    "character_name, char_tag, session_id, timestamp, ew, ns, z, kills, kills_per_hour, onlinetime, "
    "deaths, total_deaths, rares_found, prismatic_taper_count, vt_state, mem_mb, cpu_pct, mem_handles, "
    "latency_ms"
)


# --- state -------------------------------------------------------------------------------------

pool: Optional[asyncpg.Pool] = None
live_cache = {"players": []}
last_kills = {}  # (character, session_id) -> last kills seen (CONTRACT.md §6), memory only
current_session = {}  # character -> session_id of its latest telemetry
plugin_sockets = {}  # character -> WebSocket
# frames_handled counts frames whose handling is over (persisted, or dropped as bad or failed).
counters = {"frames_received": 0, "frames_accepted": 0, "frames_bad": 0, "frames_failed": 0, "frames_handled": 0}
background = []


# --- helpers -----------------------------------------------------------------------------------


def parse_ts(value):
    """An ISO 8601 instant from a frame (`Z`, offsets, fractions; naive is UTC); absent → now."""
    if value is None:
        return datetime.now(timezone.utc)
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def coerce_number(value):
    """CONTRACT.md §1: "340.5" → 340.5, "57" → 57, empty or unparsable → None."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return None
    return value


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stats_tree(value):
    """Only numbers and nested objects of numbers take part in the lifetime sums."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, leaf in value.items():
        if isinstance(leaf, dict):
            out[key] = stats_tree(leaf)
        elif is_number(leaf):
            out[key] = leaf
    return out


def add_trees(a, b, sign=1):
    """a + sign * b, leaf-wise through nested objects; a leaf missing on one side counts as 0."""
    out = dict(a)
    for key, bv in b.items():
        av = out.get(key)
        if isinstance(bv, dict):
            out[key] = add_trees(av if isinstance(av, dict) else {}, bv, sign)
        else:
            out[key] = (av if is_number(av) else 0) + sign * bv
    return out


def loads(text):
    return json.loads(text) if text is not None else None


def is_internal(host, headers):
    """CONTRACT.md §5: loopback or private peer and no X-Forwarded-For."""
    if headers.get("x-forwarded-for") is not None or not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_private


def session_user(cookie):
    """CONTRACT.md §5: URLSafeTimedSerializer(SECRET_KEY) with its defaults, 30 days."""
    if not SECRET_KEY or not cookie:
        return None
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    try:
        payload = URLSafeTimedSerializer(SECRET_KEY).loads(cookie, max_age=SESSION_MAX_AGE_S)
    except BadSignature:
        return None
    return payload.get("username") if isinstance(payload, dict) else None


def secret_ok(presented):
    if not SHARED_SECRET or not presented:
        return False
    if hmac.compare_digest(presented.encode(), SHARED_SECRET.encode()):
        return True
    return bool(SHARED_SECRET_LEGACY) and hmac.compare_digest(presented.encode(), SHARED_SECRET_LEGACY.encode())


# --- database ----------------------------------------------------------------------------------


async def ensure_database(url):
    try:
        conn = await asyncpg.connect(url)
        await conn.close()
    except asyncpg.InvalidCatalogNameError:
        parts = urlparse(url)
        name = parts.path.lstrip("/")
        admin = await asyncpg.connect(urlunparse(parts._replace(path="/postgres")))
        try:
            await admin.execute('CREATE DATABASE "%s"' % name.replace('"', '""'))
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()


async def init_db():
    global pool
    await ensure_database(DATABASE_URL)
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=10)
    if not SKIP_SCHEMA_INIT:
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        log.info("schema ready")


# --- per-type handling (CONTRACT.md §2) --------------------------------------------------------


async def handle_telemetry(data):
    name = data["character_name"]
    snap = dict(data)
    for key in STRING_NUMBERS:
        if key in snap:
            snap[key] = coerce_number(snap[key])
    session_id = snap.get("session_id")
    await pool.execute(
        """INSERT INTO telemetry_events (character_name, char_tag, session_id, timestamp, received_at,
               ew, ns, z, kills, kills_per_hour, onlinetime, deaths, total_deaths, rares_found,
               prismatic_taper_count, vt_state, mem_mb, cpu_pct, mem_handles, latency_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)""",
        name,
        snap.get("char_tag"),
        session_id,
        parse_ts(snap.get("timestamp")),
        datetime.now(timezone.utc),
        snap.get("ew"),
        snap.get("ns"),
        snap.get("z"),
        snap.get("kills"),
        snap.get("kills_per_hour"),
        snap.get("onlinetime"),
        snap.get("deaths"),
        snap.get("total_deaths"),
        snap.get("rares_found"),
        snap.get("prismatic_taper_count"),
        snap.get("vt_state"),
        snap.get("mem_mb"),
        snap.get("cpu_pct"),
        snap.get("mem_handles"),
        snap.get("latency_ms"),
    )
    if session_id is not None:
        current_session[name] = session_id
    # CONTRACT.md §6: per (character, session) the last kills; a new session starts from its first value.
    kills = snap.get("kills")
    if kills is not None:
        key = (name, session_id)
        last = last_kills.get(key)
        last_kills[key] = kills
        if last is not None and kills - last > 0:
            await pool.execute(
                """INSERT INTO char_stats (character_name, total_kills) VALUES ($1, $2)
                   ON CONFLICT (character_name) DO UPDATE SET total_kills = char_stats.total_kills + $2""",
                name,
                kills - last,
            )


async def handle_spawn(data):
    await pool.execute(
        "INSERT INTO spawn_events (character_name, mob, timestamp, ew, ns, z) VALUES ($1, $2, $3, $4, $5, $6)",
        data["character_name"],
        data.get("mob"),
        parse_ts(data.get("timestamp")),
        data.get("ew"),
        data.get("ns"),
        data.get("z"),
    )


async def handle_rare(data):
    name = data["character_name"]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO rare_events (character_name, name, timestamp, ew, ns, z) VALUES ($1, $2, $3, $4, $5, $6)",
                name,
                data.get("name"),
                parse_ts(data.get("timestamp")),
                data.get("ew"),
                data.get("ns"),
                data.get("z"),
            )
            await conn.execute(
                """INSERT INTO rare_stats (character_name, total_rares) VALUES ($1, 1)
                   ON CONFLICT (character_name) DO UPDATE SET total_rares = rare_stats.total_rares + 1""",
                name,
            )
            session_id = current_session.get(name)
            if session_id is not None:
                await conn.execute(
                    """INSERT INTO rare_stats_sessions (character_name, session_id, session_rares) VALUES ($1, $2, 1)
                       ON CONFLICT (character_name, session_id)
                       DO UPDATE SET session_rares = rare_stats_sessions.session_rares + 1""",
                    name,
                    session_id,
                )


async def handle_portal(data):
    # Deduplicated on coordinates rounded to 0.1 by the unique index: the first discovery is kept.
    await pool.execute(
        """INSERT INTO portals (portal_name, ns, ew, z, discovered_at, discovered_by)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        data.get("portal_name"),
        data.get("ns"),
        data.get("ew"),
        data.get("z"),
        parse_ts(data.get("timestamp")),
        data["character_name"],
    )


async def handle_character_stats(data):
    stats = {k: v for k, v in data.items() if k != "type"}
    await pool.execute(
        """INSERT INTO character_stats (character_name, timestamp, level, total_xp, unassigned_xp,
               luminance_earned, luminance_total, deaths, stats_data)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (character_name) DO UPDATE SET timestamp = EXCLUDED.timestamp, level = EXCLUDED.level,
               total_xp = EXCLUDED.total_xp, unassigned_xp = EXCLUDED.unassigned_xp,
               luminance_earned = EXCLUDED.luminance_earned, luminance_total = EXCLUDED.luminance_total,
               deaths = EXCLUDED.deaths, stats_data = EXCLUDED.stats_data""",
        data["character_name"],
        parse_ts(data.get("timestamp")),
        data.get("level"),
        data.get("total_xp"),
        data.get("unassigned_xp"),
        data.get("luminance_earned"),
        data.get("luminance_total"),
        data.get("deaths"),
        json.dumps(stats),
    )


async def handle_combat_stats(data):
    name = data["character_name"]
    session_id = data.get("session_id") or current_session.get(name)
    if session_id is None:
        return
    stats = data.get("stats") or {}
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        async with conn.transaction():
            previous = await conn.fetchval(
                "SELECT data FROM combat_stats_sessions WHERE character_name = $1 AND session_id = $2 FOR UPDATE",
                name,
                session_id,
            )
            # CONTRACT.md §6: lifetime += this snapshot − the session's previous one, leaf-wise.
            diff = add_trees(stats_tree(stats), stats_tree(loads(previous)), -1)
            await conn.execute(
                """INSERT INTO combat_stats_sessions (character_name, session_id, data, updated_at)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (character_name, session_id)
                   DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at""",
                name,
                session_id,
                json.dumps(stats),
                now,
            )
            lifetime = await conn.fetchval(
                "SELECT lifetime FROM combat_stats WHERE character_name = $1 FOR UPDATE", name
            )
            total = add_trees(stats_tree(loads(lifetime)), diff)
            await conn.execute(
                """INSERT INTO combat_stats (character_name, lifetime, updated_at) VALUES ($1, $2, $3)
                   ON CONFLICT (character_name) DO UPDATE SET lifetime = EXCLUDED.lifetime,
                       updated_at = EXCLUDED.updated_at""",
                name,
                json.dumps(total),
                now,
            )


HANDLERS = {
    "telemetry": handle_telemetry,
    "spawn": handle_spawn,
    "rare": handle_rare,
    "portal": handle_portal,
    "character_stats": handle_character_stats,
    "combat_stats": handle_combat_stats,
}


# --- the app -----------------------------------------------------------------------------------

app = FastAPI()

TEE = tee_from_env()


@app.on_event("startup")
async def _start_overlord_tee():
    TEE.start()


@app.on_event("shutdown")
async def _stop_overlord_tee():
    await TEE.stop()


PUBLIC = ("/health", "/api-version")


@app.middleware("http")
async def internal_trust_only(request: Request, call_next):
    if (
        request.url.path not in PUBLIC
        and not is_internal(request.client and request.client.host, request.headers)
        and session_user(request.cookies.get(SESSION_COOKIE)) is None
    ):
        return JSONResponse({"detail": "Not authenticated"}, status_code=401)
    return await call_next(request)


async def refresh_live():
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT {', '.join('t.' + c.strip() for c in PLAYER_COLUMNS.split(','))},
                   COALESCE(cs.total_kills, 0) AS total_kills, COALESCE(rs.total_rares, 0) AS total_rares
               FROM (
                   SELECT DISTINCT ON (character_name) * FROM telemetry_events
                   WHERE COALESCE(received_at, timestamp) > $1
                   ORDER BY character_name, timestamp DESC, id DESC
               ) t
               LEFT JOIN char_stats cs ON cs.character_name = t.character_name
               LEFT JOIN rare_stats rs ON rs.character_name = t.character_name
               ORDER BY t.character_name""",
            datetime.now(timezone.utc) - ACTIVE_WINDOW,
        )
    live_cache["players"] = [dict(r) for r in rows]


async def live_loop():
    while True:
        try:
            await refresh_live()
        except Exception:
            log.exception("live cache refresh failed")
        await asyncio.sleep(LIVE_REFRESH_S)


async def retention_loop():
    while True:
        try:
            now = datetime.now(timezone.utc)
            await pool.execute("DELETE FROM portals WHERE discovered_at < $1", now - timedelta(hours=1))
            await pool.execute("DELETE FROM telemetry_events WHERE timestamp < $1", now - timedelta(days=30))
            await pool.execute("DELETE FROM spawn_events WHERE timestamp < $1", now - timedelta(days=7))
        except Exception:
            log.exception("retention pass failed")
        await asyncio.sleep(RETENTION_INTERVAL_S)


@app.on_event("startup")
async def startup():
    await init_db()
    background.append(asyncio.create_task(live_loop()))
    background.append(asyncio.create_task(retention_loop()))


@app.on_event("shutdown")
async def shutdown():
    for task in background:
        task.cancel()
    if pool is not None:
        await pool.close()


async def handle_frame(text, websocket, registered):
    """One plugin frame: parsed, per-type handling; returns the socket's registered character."""
    try:
        data = json.loads(text)
    except ValueError:
        counters["frames_bad"] += 1
        return registered
    if not isinstance(data, dict) or "type" not in data:
        counters["frames_bad"] += 1
        return registered
    name = data.get("character_name")
    if registered is None and isinstance(name, str):
        registered = name
        plugin_sockets[name] = websocket
    handler = HANDLERS.get(data["type"])
    try:
        if handler is not None:
            await handler(data)
        counters["frames_accepted"] += 1
        after_frame(data, text, websocket)  # memory-only state and the browser feed; never raises
    except Exception as exc:
        counters["frames_failed"] += 1
        log.warning("%s frame from %r dropped: %s: %s", data.get("type"), name, type(exc).__name__, exc)
    return registered


@app.websocket("/ws/position")
async def ws_receive_snapshots(websocket: WebSocket):
    presented = websocket.headers.get("x-plugin-secret") or websocket.query_params.get("secret")
    await websocket.accept()
    if not secret_ok(presented):
        await websocket.close(code=1008)
        return
    registered = None
    tee_conn = TEE.open()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            TEE.frame(tee_conn, text)
            counters["frames_received"] += 1
            try:
                registered = await handle_frame(text, websocket, registered)
            finally:
                counters["frames_handled"] += 1
    except WebSocketDisconnect:
        pass
    finally:
        TEE.close(tee_conn)
        if registered is not None and plugin_sockets.get(registered) is websocket:
            del plugin_sockets[registered]


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/api-version")
async def api_version():
    return {"version": BUILD_VERSION}


@app.get("/metrics.json")
async def metrics():
    return {**counters, "plugin_connections": len(plugin_sockets)}


@app.get("/live")
async def live():
    return live_cache


@app.get("/trails")
async def trails(seconds: int = Query(600, ge=0)):
    rows = await pool.fetch(
        """SELECT character_name, ew, ns, z, timestamp FROM telemetry_events
           WHERE timestamp >= $1 ORDER BY character_name, timestamp, id""",
        datetime.now(timezone.utc) - timedelta(seconds=seconds),
    )
    return {"trails": [dict(r) for r in rows]}


def query_instant(value, field):
    if value is None or value == "":
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise HTTPException(
            422,
            [{"loc": ["query", field], "msg": "invalid datetime format", "type": "value_error.datetime"}],
        )


@app.get("/history")
async def history(
    from_: Optional[str] = Query(None, alias="from"),
    to: Optional[str] = Query(None),
    character: Optional[str] = Query(None),
):
    start = query_instant(from_, "from")
    end = query_instant(to, "to")
    rows = await pool.fetch(
        """SELECT character_name, timestamp, kills, kills_per_hour, ew, ns, z FROM telemetry_events
           WHERE ($1::timestamptz IS NULL OR timestamp >= $1)
             AND ($2::timestamptz IS NULL OR timestamp <= $2)
             AND ($3::text IS NULL OR character_name = $3)
           ORDER BY timestamp, id LIMIT $4""",
        start,
        end,
        character or None,
        MAX_HISTORY_ROWS,
    )
    return {"data": [dict(r) for r in rows]}


async def totals(conn, name):
    kills = await conn.fetchval("SELECT total_kills FROM char_stats WHERE character_name = $1", name)
    rares = await conn.fetchval("SELECT total_rares FROM rare_stats WHERE character_name = $1", name)
    return kills or 0, rares or 0


@app.get("/stats/{character_name}")
async def stats(character_name: str):
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"""SELECT {PLAYER_COLUMNS} FROM telemetry_events WHERE character_name = $1
                ORDER BY timestamp DESC, id DESC LIMIT 1""",
            character_name,
        )
        if row is None:
            raise HTTPException(404, "Character not found")
        kills, rares = await totals(conn, character_name)
    return {
        "character_name": character_name,
        "latest_snapshot": dict(row),
        "total_kills": kills,
        "total_rares": rares,
    }


@app.get("/total-kills")
async def total_kills():
    return {"total": await pool.fetchval("SELECT COALESCE(sum(total_kills), 0) FROM char_stats")}


@app.get("/total-rares")
async def total_rares():
    midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    async with pool.acquire() as conn:
        all_time = await conn.fetchval("SELECT COALESCE(sum(total_rares), 0) FROM rare_stats")
        today = await conn.fetchval("SELECT count(*) FROM rare_events WHERE timestamp >= $1", midnight)
    return {"all_time": all_time, "today": today}


@app.get("/character-stats/list")
async def character_stats_list():
    rows = await pool.fetch("SELECT character_name, level, timestamp FROM character_stats ORDER BY character_name")
    return {"characters": [dict(r) for r in rows]}


@app.get("/character-stats/{name}")
async def character_stats(name: str):
    row = await pool.fetchrow(
        "SELECT character_name, timestamp, stats_data FROM character_stats WHERE character_name = $1", name
    )
    if row is None:
        raise HTTPException(404, "Character stats not found")
    result = json.loads(row["stats_data"])
    result["character_name"] = row["character_name"]
    result["timestamp"] = row["timestamp"]
    return result


@app.get("/combat-stats/{name}")
async def combat_stats(name: str):
    async with pool.acquire() as conn:
        session = await conn.fetchrow(
            """SELECT session_id, data FROM combat_stats_sessions WHERE character_name = $1
                 AND ($2::text IS NULL OR session_id = $2)
               ORDER BY updated_at DESC LIMIT 1""",
            name,
            current_session.get(name),
        )
        lifetime = await conn.fetchval("SELECT lifetime FROM combat_stats WHERE character_name = $1", name)
    return {
        "character_name": name,
        "session": {"session_id": session["session_id"], **json.loads(session["data"])} if session else None,
        "lifetime": loads(lifetime),
    }


# --- memory-only state, the browser feed and the remaining reads (CONTRACT.md §2-4) ---------------
#
# Quests, vital-sharing peers and dungeon maps live in memory only; every accepted plugin frame is
# re-broadcast to /ws/live (telemetry typeless). Each browser has a bounded queue and one writer
# task, so ingest never awaits a browser. As the TypeScript hub does: a browser whose queue stays
# over LIVE_QUEUE_BYTES for LIVE_QUEUE_GRACE_S, or ever holds 8 times that, is cut off with 1013
# (a burst the writer has not had a turn for yet is not slowness). SERVER_NAME names /server-health
# (no probe URL here: the status stays "unknown").

LIVE_QUEUE_BYTES = int(os.environ.get("LIVE_QUEUE_BYTES", str(1024 * 1024)))
LIVE_QUEUE_HARD_BYTES = 8 * LIVE_QUEUE_BYTES
LIVE_QUEUE_GRACE_S = 2.0
MAX_BROWSER_MESSAGE_BYTES = 64 * 1024
CLOSE_SLOW_CONSUMER = 1013
CLOSE_TOO_BIG = 1009
MAX_DUNGEON_MAPS = 4096
MAX_QUESTS = 100_000
MAX_PEERS = 10_000

quests = {}  # (character, quest_name) -> {"countdown", "last_updated"}
share_peers = {}  # character -> {"last_seen", "payload"}
dungeon_maps = {}  # landblock -> the dungeon_map frame text as received
browsers = set()
side_tasks = set()  # fire-and-forget sends to plugins, referenced until done
counters.update({"browsers": 0, "browser_messages_sent": 0, "browser_slow_disconnects": 0})
server_health = {
    "server_name": os.environ.get("SERVER_NAME", "") or "Coldeve",
    "status": "unknown",
    "latency_ms": None,
    "player_count": None,
    "last_check": None,
}


def remember(table, key, value, cap):
    """Insert or refresh `key` as the newest entry; past `cap` the least recently set goes."""
    table.pop(key, None)
    table[key] = value
    if len(table) > cap:
        del table[next(iter(table))]


def frame_instant(value, fallback):
    """The frame's own instant in UTC; `fallback` (the receive time) when absent or unparsable."""
    if isinstance(value, str):
        try:
            return parse_ts(value).astimezone(timezone.utc)
        except (ValueError, TypeError):
            pass
    return fallback


class Browser:
    """One /ws/live client: its subscribe filter and its bounded queue of texts to send."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.filter = None
        self.queue = collections.deque()
        self.queued_bytes = 0
        self.wakeup = asyncio.Event()
        self.writer = None
        self.cut = False
        self.over_since = None

    def push(self, text):
        if self.cut:
            return
        backlog = self.queued_bytes + len(text)
        if backlog > LIVE_QUEUE_BYTES:
            now = time.monotonic()
            if self.over_since is None:
                self.over_since = now
            if backlog > LIVE_QUEUE_HARD_BYTES or now - self.over_since > LIVE_QUEUE_GRACE_S:
                self.cut_off()
                return
        self.queue.append(text)
        self.queued_bytes += len(text)
        self.wakeup.set()

    def cut_off(self):
        """CONTRACT.md §3: a browser that cannot keep up is disconnected (1013), its backlog freed."""
        self.cut = True
        self.queue.clear()
        self.queued_bytes = 0
        browsers.discard(self)
        counters["browsers"] = len(browsers)
        counters["browser_slow_disconnects"] += 1
        log.warning("slow browser cut off")
        if self.writer is not None:
            self.writer.cancel()
        fire_and_forget(self.websocket.close(code=CLOSE_SLOW_CONSUMER, reason="slow consumer"))

    async def write(self):
        try:
            while True:
                if not self.queue:
                    self.wakeup.clear()
                    await self.wakeup.wait()
                    continue
                text = self.queue.popleft()
                self.queued_bytes -= len(text)
                if self.queued_bytes <= LIVE_QUEUE_BYTES:
                    self.over_since = None
                await self.websocket.send_text(text)
                counters["browser_messages_sent"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket went away: the reader ends the connection
            log.debug("browser send failed: %s: %s", type(exc).__name__, exc)


def fire_and_forget(coro):
    async def guarded():
        try:
            await coro
        except Exception as exc:
            log.debug("send failed: %s: %s", type(exc).__name__, exc)

    task = asyncio.get_running_loop().create_task(guarded())
    side_tasks.add(task)
    task.add_done_callback(side_tasks.discard)


def broadcast(kind, text):
    for browser in list(browsers):
        if browser.filter is None or kind in browser.filter:
            browser.push(text)


def after_frame(data, text, websocket):
    """Memory-only handling and the re-broadcast of one accepted plugin frame; never raises."""
    try:
        kind = data["type"]
        name = data.get("character_name")
        now = datetime.now(timezone.utc)
        if kind == "quest" and isinstance(name, str) and isinstance(data.get("quest_name"), str):
            entry = {"countdown": data.get("countdown"), "last_updated": frame_instant(data.get("timestamp"), now)}
            remember(quests, (name, data["quest_name"]), entry, MAX_QUESTS)
        elif kind == "dungeon_map" and isinstance(data.get("landblock"), str):
            remember(dungeon_maps, data["landblock"], text, MAX_DUNGEON_MAPS)
        elif isinstance(kind, str) and kind.startswith("share_"):
            if isinstance(name, str):
                remember(share_peers, name, {"last_seen": now, "payload": data}, MAX_PEERS)
            for other in list(plugin_sockets.values()):
                if other is not websocket:
                    fire_and_forget(other.send_text(text))
        if not browsers:
            return
        if kind == "telemetry":
            # CONTRACT.md §3: telemetry goes out typeless, as received otherwise.
            typeless = {k: v for k, v in json.loads(text).items() if k != "type"}
            broadcast("telemetry", json.dumps(typeless))
        else:
            broadcast(kind, text)
    except Exception:
        log.exception("after-frame handling failed")


def browser_message(browser, text):
    """A /ws/live message (CONTRACT.md §3): subscribe, request_dungeon_map or a command."""
    try:
        msg = json.loads(text)
    except ValueError:
        return
    if not isinstance(msg, dict):
        return
    kind = msg.get("type")
    if kind == "subscribe":
        types = msg.get("message_types")
        if isinstance(types, list) and all(isinstance(t, str) for t in types):
            browser.filter = set(types)
        return
    if kind == "request_dungeon_map":
        landblock = msg.get("landblock")
        landblock = landblock if isinstance(landblock, str) else None
        cached = dungeon_maps.get(landblock) if landblock is not None else None
        if cached is None:
            cached = json.dumps({"type": "dungeon_map", "landblock": landblock, "error": "not_found"})
        browser.push(cached)
        return
    player = msg.get("player_name")
    if isinstance(player, str) and isinstance(msg.get("command"), str):
        plugin = plugin_sockets.get(player)
        if plugin is None:
            browser.push(json.dumps({"type": "command_error", "player_name": player, "error": "not_connected"}))
        else:
            fire_and_forget(plugin.send_text(text))


@app.websocket("/ws/live")
async def ws_live(websocket: WebSocket):
    await websocket.accept()
    host = websocket.client.host if websocket.client else None
    if not is_internal(host, websocket.headers) and session_user(websocket.cookies.get(SESSION_COOKIE)) is None:
        await websocket.close(code=1008)
        return
    browser = Browser(websocket)
    browsers.add(browser)
    counters["browsers"] = len(browsers)
    browser.writer = asyncio.create_task(browser.write())
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            if len(text) > MAX_BROWSER_MESSAGE_BYTES:
                await websocket.close(code=CLOSE_TOO_BIG)
                break
            browser_message(browser, text)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        browsers.discard(browser)
        counters["browsers"] = len(browsers)
        browser.writer.cancel()


@app.on_event("startup")
async def load_server_status():
    # As the TypeScript tracker: a status recorded earlier is served as it was recorded.
    try:
        row = await pool.fetchrow(
            "SELECT server_name, status, latency_ms, player_count, last_check FROM server_status WHERE id = 1"
        )
    except Exception:
        log.exception("could not read server_status")
        return
    if row is not None:
        server_health.update(dict(row))


@app.get("/quest-status")
async def quest_status():
    rows = [
        {"character_name": c, "quest_name": q, "countdown": v["countdown"], "last_updated": v["last_updated"]}
        for (c, q), v in sorted(quests.items(), key=lambda item: item[0])
    ]
    return {"quest_data": rows}


@app.get("/portals")
async def portals():
    rows = await pool.fetch(
        "SELECT portal_name, ns, ew, z, discovered_at, discovered_by FROM portals ORDER BY portal_name, ns, ew"
    )
    return {"portals": [dict(r) for r in rows]}


@app.get("/spawns/heatmap")
async def spawns_heatmap(hours: int = Query(24, ge=1, le=8760), limit: int = Query(10_000, ge=1, le=100_000)):
    rows = await pool.fetch(
        """SELECT round(ew::numeric, 1)::float8 AS ew, round(ns::numeric, 1)::float8 AS ns,
                  count(*)::int AS intensity
           FROM spawn_events WHERE timestamp >= $1 AND ew IS NOT NULL AND ns IS NOT NULL
           GROUP BY 1, 2 ORDER BY intensity DESC, ew, ns LIMIT $2""",
        datetime.now(timezone.utc) - timedelta(hours=hours),
        limit,
    )
    points = [dict(r) for r in rows]
    return {"spawn_points": points, "hours_window": hours, "total_points": len(points)}


@app.get("/vital-sharing/peers")
async def vital_sharing_peers():
    peers = sorted(share_peers.items(), key=lambda item: item[0])
    return {"peers": [{"character_name": n, "last_seen": p["last_seen"]} for n, p in peers]}


@app.get("/server-health")
async def server_health_route():
    return dict(server_health)


# --- process -----------------------------------------------------------------------------------


async def serve(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        ws="websockets",
        ws_max_size=MAX_FRAME_BYTES,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit(1)
        await asyncio.sleep(0.02)
    sys.stdout.write(json.dumps({"port": sock.getsockname()[1]}) + "\n")
    sys.stdout.flush()
    await task


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
