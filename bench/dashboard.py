"""Dashboard query latency: ``GET /counts`` (7 days, hourly, one camera) against plain SQL on raw rows.

    .venv/bin/python -m bench.dashboard [--scale 1.0] [--requests 400] [--regenerate] [--no-write]

Data (``--scale 1.0``: 10 million events over 1,000 tenants; ``--scale 0.1``: 1 million over 100),
generated once into a dedicated database ``cc_bench_dashboard`` and reused by later runs at the
same scale:

- tenants are provisioned by camcount (pooled placement), each with one site in one of six time
  zones (two with +05:30 / +05:45 offsets) and two cameras;
- events span the 8 days before the run, in time order across all cameras (the physical order
  ingestion produces), in/out, loaded with binary ``COPY`` into ``counting_results`` as the
  server's superuser (``COPY FROM`` is refused where RLS applies), then ``counting_event_ids`` and
  the 15-minute rollups built from them with one ``INSERT ... SELECT`` each, rollups in bucket
  order, as ingestion would have written them.

Measured side by side, request by request, on the same random (tenant, camera, window) sequence;
no (camera, window) is asked twice, so the API never answers from its aggregate cache and each
request measures the rollup query behind it:

- ``api``: ``GET /t/{slug}/counts?camera_id=..&bucket=hour&from=..&to=..`` over HTTP to a ``camcount serve``
  process (1 worker), with a user token: authentication, tenant transaction, rollups, JSON; sent
  by ``bench/http_client.py`` on a kept-alive connection and the answer parsed, in the timing;
- ``sql-raw``: the same hourly sums in the site's time zone, in plain SQL on the raw rows
  (``WHERE tenant_id = .. AND camera_id = ..``, one connection, no RLS, no HTTP): the baseline;
- ``sql-rollup``: the rollup query in plain SQL, to show what HTTP and Python add.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pydantic_core

from bench.counting_setup import (
    add_site_and_cameras,
    api_server,
    bench_database,
    bench_settings,
    database_exists,
    lift_limits,
    machine,
    percentile,
    stamp,
    write_section,
)
from bench.http_client import KeepAliveClient
from camcount.accounts.roles import Role
from camcount.accounts.users import UserRequest, create_user
from camcount.db.pools import Database
from camcount.errors import Conflict
from camcount.tenancy.models import Tenant
from camcount.tenancy.partitions import ensure_partitions
from camcount.tenancy.provisioning import TenantRequest, create_tenant

DBNAME = "cc_bench_dashboard"
FULL_EVENTS = 10_000_000
FULL_TENANTS = 1000
CAMERAS_PER_TENANT = 2
SPAN = timedelta(days=8)  # the 7-day window is full
ZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Sydney", "UTC")
PASSWORD = "bench password for dashboard users"  # noqa: S105 (bench users in a bench database)
LOGGED_IN = 40  # tenants the requests are spread over (each logs in once)

_RAW_SQL = """
SELECT date_trunc('hour', occurred_at, %(tz)s) AS bucket, count_type, sum(count_value), count(*)
FROM pooled.counting_results
WHERE tenant_id = %(t)s AND camera_id = %(c)s AND occurred_at >= %(start)s AND occurred_at < %(end)s
GROUP BY 1, 2 ORDER BY 1, 2
"""
_ROLLUP_SQL = """
SELECT date_trunc('hour', bucket_start, %(tz)s) AS bucket, count_type, sum(total), sum(events)
FROM pooled.counting_rollups
WHERE tenant_id = %(t)s AND camera_id = %(c)s AND bucket_start >= %(start)s AND bucket_start < %(end)s
GROUP BY 1, 2 ORDER BY 1, 2
"""


def login_url() -> str:
    from bench.counting_setup import SERVER_URL

    return psycopg.conninfo.make_conninfo(SERVER_URL, dbname=DBNAME)


async def generate(db: Database, scale: float, end: datetime) -> None:
    tenants_n = max(2, round(FULL_TENANTS * scale))
    events_n = round(FULL_EVENTS * scale)
    rng = random.Random(7)
    started = time.perf_counter()
    cameras: list[tuple[int, int]] = []  # (tenant_id, camera_id)
    for index in range(tenants_n):
        request = TenantRequest.parse(f"dash-{index:04d}", name=f"Dashboard {index}")
        tenant = (await create_tenant(db, request, actor="bench")).tenant
        for camera in await add_site_and_cameras(db, tenant, ZONES[index % len(ZONES)], CAMERAS_PER_TENANT):
            cameras.append((tenant.id, camera))
    print(f"{tenants_n} tenants in {time.perf_counter() - started:.0f} s", flush=True)
    async with db.owner() as conn:
        for months_back in (0, 1):
            await ensure_partitions(
                conn, "pooled", today=(end - SPAN * months_back).date(), behind=1, ahead=1
            )
        await conn.commit()
    start = end - SPAN
    step = SPAN / events_n
    with psycopg.connect(login_url()) as conn:
        began = time.perf_counter()
        with conn.cursor().copy(
            "COPY pooled.counting_results (tenant_id, camera_id, event_id, count_type, object_class, count_value, "
            "confidence, occurred_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", "text", "text", "text", "int4", "float4", "timestamptz"])
            for i in range(events_n):
                tenant_id, camera_id = cameras[rng.randrange(len(cameras))]
                copy.write_row(
                    (tenant_id, camera_id, f"b{i}", "in" if i & 1 else "out", "person", rng.randint(0, 6),
                     0.9, start + step * i)
                )  # fmt: skip
        print(f"{events_n:,} events copied in {time.perf_counter() - began:.0f} s", flush=True)
        began = time.perf_counter()
        conn.execute(
            "INSERT INTO pooled.counting_event_ids (tenant_id, camera_id, event_id, occurred_at) "
            "SELECT tenant_id, camera_id, event_id, occurred_at FROM pooled.counting_results"
        )
        conn.execute(
            """
            INSERT INTO pooled.counting_rollups (tenant_id, camera_id, count_type, object_class, bucket_start,
                                                 total, events, confidence_sum)
            SELECT tenant_id, camera_id, count_type, object_class,
                   date_bin('15 minutes', occurred_at, '2000-01-01 00:00:00+00') AS bucket,
                   sum(count_value), count(*), sum(coalesce(confidence, 0))
            FROM pooled.counting_results GROUP BY 1, 2, 3, 4, 5 ORDER BY bucket, 1, 2
            """
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.bench_marker (scale double precision, ended timestamptz)"
        )
        conn.execute("INSERT INTO public.bench_marker VALUES (%s, %s)", (scale, end))
        conn.commit()
        print(f"ledger and rollups in {time.perf_counter() - began:.0f} s", flush=True)
        conn.autocommit = True
        conn.execute(
            "VACUUM ANALYZE pooled.counting_results, pooled.counting_event_ids, pooled.counting_rollups"
        )


def stored_scale() -> tuple[float, datetime] | None:
    if not database_exists(DBNAME):
        return None
    with psycopg.connect(login_url()) as conn:
        exists = conn.execute("SELECT to_regclass('public.bench_marker')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute("SELECT scale, ended FROM public.bench_marker").fetchone()
        return (float(row[0]), row[1]) if row else None


async def sample_targets(db: Database, count: int) -> list[tuple[Tenant, str, int, str]]:
    """(tenant, token, camera, time zone) for ``count`` tenants with an owner user, logged in."""
    from camcount.tenancy.lifecycle import get_tenant_by_slug

    targets = []
    async with db.owner() as conn:
        cur = await conn.execute("SELECT slug FROM control.tenants WHERE slug LIKE 'dash-%%' ORDER BY slug")
        slugs = [r[0] for r in await cur.fetchall()]
    for slug in random.Random(3).sample(slugs, min(count, len(slugs))):
        async with db.owner() as conn:
            tenant = await get_tenant_by_slug(conn, slug)
        assert tenant is not None
        await lift_limits(db, tenant)
        username = "viewer"
        request = UserRequest.parse(
            username=username, email="v@example.com", role=Role.VIEWER, password=PASSWORD
        )
        with contextlib.suppress(Conflict):  # already there from an earlier run
            await create_user(db, tenant, request, actor="bench")
        with psycopg.connect(login_url()) as conn:
            rows = conn.execute(
                "SELECT c.id, s.timezone FROM pooled.cameras c JOIN pooled.sites s "
                "ON s.tenant_id = c.tenant_id AND s.id = c.site_id WHERE c.tenant_id = %s ORDER BY c.id",
                (tenant.id,),
            ).fetchall()
        for camera_id, timezone in rows:
            targets.append((tenant, username, int(camera_id), str(timezone)))
    return targets


async def measure(
    base: str, targets: list[tuple[Tenant, str, int, str]], requests: int, end: datetime
) -> dict[str, list[float]]:
    last = end.replace(minute=0, second=0, microsecond=0)
    timings: dict[str, list[float]] = {"api": [], "sql-raw": [], "sql-rollup": []}
    tokens: dict[str, str] = {}
    rng = random.Random(11)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for tenant, username, _, _ in targets:
            if tenant.slug not in tokens:
                response = await client.post(
                    f"/t/{tenant.slug}/auth/token", data={"username": username, "password": PASSWORD}
                )
                assert response.status_code == 200, response.text
                tokens[tenant.slug] = response.json()["access_token"]
        asked: set[tuple[int, int]] = set()
        # The timed requests go through the lean keep-alive client (bench/http_client.py), as the
        # ingestion benchmark's do: httpx's own work per request was counted as the API's latency.
        lean = await KeepAliveClient.connect(base)
        with psycopg.connect(login_url(), autocommit=True) as sql_conn:
            for i in range(requests + 50):
                # Each request a new (camera, window): the API would answer a repeated one from its
                # aggregate cache, and this measures the query behind it (windows ending up to a
                # day before the data's end, all inside its 8 days).
                while True:
                    tenant, _, camera, timezone = targets[rng.randrange(len(targets))]
                    shift = rng.randrange(24)
                    if (camera, shift) not in asked:
                        asked.add((camera, shift))
                        break
                to = last - timedelta(hours=shift)
                start = to - timedelta(days=7)
                params: dict[str, str | int] = {
                    "camera_id": camera,
                    "bucket": "hour",
                    "from": start.isoformat(),
                    "to": to.isoformat(),
                }
                headers = {"Authorization": f"Bearer {tokens[tenant.slug]}"}
                sql_params: dict[str, Any] = {
                    "tz": timezone,
                    "t": tenant.id,
                    "c": camera,
                    "start": start,
                    "end": to,
                }
                order = ["api", "sql-raw", "sql-rollup"]
                rng.shuffle(order)
                for path in order:
                    began = time.perf_counter()
                    if path == "api":
                        status, answer = await lean.get(
                            f"/t/{tenant.slug}/counts?{urlencode(params)}", headers
                        )
                        assert status == 200, answer[:500]
                        items = len(pydantic_core.from_json(answer)["items"])
                    else:
                        query = _RAW_SQL if path == "sql-raw" else _ROLLUP_SQL
                        items = len(sql_conn.execute(query, sql_params).fetchall())
                    elapsed = time.perf_counter() - began
                    if i >= 50:  # warm-up discarded
                        timings[path].append(elapsed * 1000)
                    assert items > 0
        await lean.close()
    return timings


async def main(args: argparse.Namespace) -> None:
    header = machine()
    home = Path(tempfile.mkdtemp(prefix="camcount-bench-"))
    settings = bench_settings(DBNAME, home)
    stored = stored_scale()
    fresh = args.regenerate or stored is None or stored[0] != args.scale
    end = datetime.now(UTC) if fresh else stored[1]  # type: ignore[index]
    generation = ""
    async with bench_database(settings, DBNAME, fresh=fresh) as db:
        if fresh:
            began = time.perf_counter()
            await generate(db, args.scale, end)
            generation = f"generated in {time.perf_counter() - began:.0f} s"
        else:
            generation = "reused from an earlier run"
        targets = await sample_targets(db, LOGGED_IN)
    with api_server(settings) as base:
        timings = await measure(base, targets, args.requests, end)
    stats = {path: (percentile(v, 50), percentile(v, 99)) for path, v in timings.items()}
    for path, (p50, p99) in stats.items():
        print(f"{path:>10}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    ratio = stats["api"][1] / stats["sql-raw"][1]
    print(f"api p99 / sql-raw p99 = {ratio:.2f} (target < 1)")
    if not args.no_write:
        write_section("Dashboard query", report(args, header, stats, ratio, generation))


def report(
    args: argparse.Namespace,
    header: str,
    stats: dict[str, tuple[float, float]],
    ratio: float,
    generation: str,
) -> str:
    events = round(FULL_EVENTS * args.scale)
    tenants = max(2, round(FULL_TENANTS * args.scale))
    rows = "\n".join(
        f"| {path} | {p50:.2f} | {p99:.2f} | {p99 / stats['sql-raw'][1]:.2f} |"
        for path, (p50, p99) in stats.items()
    )
    return f"""
Measured {stamp()} on {header}. Client, server and PostgreSQL share the
same 2 cores; compare the ratios, not the absolute numbers.

Command: `.venv/bin/python -m bench.dashboard --scale {args.scale} --requests {args.requests}`
(scale {args.scale}: **{events:,} events over {tenants:,} tenants**, {CAMERAS_PER_TENANT} cameras each, 8 days,
all pooled placement, in a dedicated database `{DBNAME}`, {generation}). {args.requests} measured requests
per path (50 more as warm-up), the paths interleaved in random order on the same random cameras of
{LOGGED_IN} tenants; each request: 7 days ending on one of the data's last 24 hours, hourly buckets
in the site's time zone, one camera (168 buckets). No (camera, window) is asked twice, so every API
answer is computed from the rollups, never served from the aggregate cache.

| path | p50 ms | p99 ms | p99 ratio to sql-raw |
|---|---|---|---|
{rows}

**API p99 / plain SQL on raw rows p99: {ratio:.2f}** (target: below 1).

- `api`: `GET /t/{{slug}}/counts` over HTTP to `camcount serve` (1 worker), user token, tenant transaction,
  15-minute rollups, JSON answer with offsets; sent by `bench/http_client.py` on a kept-alive
  connection (httpx's own work per request had been timed as the API's), the answer parsed.
- `sql-raw`: `date_trunc('hour', occurred_at, tz)` sums over `counting_results` with
  `WHERE tenant_id AND camera_id AND occurred_at`, one connection, no RLS (superuser), no HTTP.
- `sql-rollup`: the same sums from `counting_rollups` in plain SQL.
- Data: binary `COPY` of the events (as the superuser: `COPY FROM` is refused where RLS applies),
  the idempotency ledger and rollups with one `INSERT ... SELECT` each (rollups in bucket order).
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10M events over 1,000 tenants")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the data even if present")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
