"""Ingestion throughput: ``POST /events`` against a raw COPY + ``ON CONFLICT DO NOTHING`` baseline.

    .venv/bin/python -m bench.ingest [--batches 100] [--rounds 9] [--concurrency 4] [--shared-cameras]
                                     [--placement pooled] [--prefill EVENTS] [--no-write] [--baseline-tree PATH]

Paths, measured side by side in each round (interleaved, so load from other work on the machine
hits them alike), each inserting fresh rows of the same shape into the same tenant's tables.

The load is ``--concurrency`` edge devices sending at once, as a tenant's sites do: each device is
a site with 10 cameras and its own device key (scoped to its site), and sends its batches one after
another, each covering one hour of its cameras. Every path gets the same batches, device by device.
``--shared-cameras`` makes all clients send random picks of one site's 10 cameras instead (a worst
case for the ledger: concurrent batches insert next to each other in the same index pages).
``--prefill N`` stores N events before the first round, so the paths insert into tables of a
production size instead of empty ones (every round adds 40,000 events per path as well).

- ``api``: batches of 1,000 events as JSON through a real ``camcount serve`` process (1 worker) with the
  device's key: authentication, per-event checks, idempotency through ``counting_event_ids``,
  rollups, the commit, and the answer, short as camcount's edge worker asks for it
  (``Prefer: return=minimal``: only the events not accepted are listed).
- ``api-full``: the same with the full answer (every event's outcome listed), as a client that
  does not send ``Prefer`` gets it.
- ``raw``: the baseline. Binary ``COPY`` of the same rows into a temporary staging table, then
  ``INSERT INTO counting_results ... ON CONFLICT DO NOTHING`` (the table's own unique key), in a
  tenant transaction on long-lived owner connections (one per device), one transaction per batch
  (RLS is forced for the owner too). No idempotency table, no rollups, no camera checks, no HTTP.
- ``layer``: :func:`camcount.counting.ingest.ingest_batch` called in process on the application
  role's pool (no HTTP, no JSON): what the data layer costs.
- ``api-baseline`` (only with ``--baseline-tree``): ``POST /events`` served by another checkout's
  code (e.g. ``git worktree add /tmp/before <commit>``), against the same database: before and after
  a change, side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic_core
import uvloop
from psycopg import AsyncConnection

from bench.counting_setup import (
    add_device_key,
    add_site_and_cameras,
    api_server,
    bench_database,
    bench_settings,
    lift_limits,
    machine,
    median,
    stamp,
    write_section,
)
from bench.cpu import CpuSeconds, cpu_by_group, server_pids
from bench.http_client import KeepAliveClient
from camcount.counting.ingest import EventColumns, IngestScope, ingest_batch
from camcount.db.pools import Database
from camcount.db.scope import set_tenant_context, tenant_transaction
from camcount.tenancy.models import Tenant
from camcount.tenancy.provisioning import TenantRequest, create_tenant

DBNAME = "cc_bench_ingest"
BATCH = 1000
CAMERAS = 10  # per device (site)

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS bench_staging (
    camera_id bigint, event_id text, count_type text, object_class text, count_value integer,
    confidence real, occurred_at timestamptz
) ON COMMIT DELETE ROWS
"""
_COPY = (
    "COPY bench_staging (camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at) "
    "FROM STDIN (FORMAT BINARY)"
)
_TYPES = ["int8", "text", "text", "text", "int4", "float4", "timestamptz"]
_RAW_INSERT = """
INSERT INTO counting_results (tenant_id, camera_id, event_id, count_type, object_class, count_value, confidence,
                              occurred_at)
SELECT %s, camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at FROM bench_staging
ON CONFLICT DO NOTHING
"""
Row = tuple[int, str, str, str, int, float, datetime]


def make_batches(
    prefix: str, batches: int, cameras: list[int], rng: random.Random, now: datetime
) -> list[list[Row]]:
    """One device's batches: each covers one hour of its cameras (about 80 rollup rows)."""
    return [
        [
            (rng.choice(cameras), f"{prefix}-{b}-{i}", rng.choice(("in", "out")), "person", rng.randint(0, 5),
             round(rng.uniform(0.5, 1.0), 3), now - timedelta(hours=b % 48, seconds=rng.randint(0, 3599)))
            for i in range(BATCH)
        ]
        for b in range(batches)
    ]  # fmt: skip


def as_body(batch: list[Row]) -> bytes:
    events = [
        {"event_id": e, "camera_id": c, "count_type": t, "count_value": v, "confidence": conf,
         "occurred_at": at.isoformat(), "object_class": oc}
        for c, e, t, oc, v, conf, at in batch
    ]  # fmt: skip
    return json.dumps({"events": events}).encode()


@dataclass(frozen=True)
class Device:
    """An edge device: its site's cameras and its key."""

    cameras: list[int]
    key: str
    scope: IngestScope  # the key's scope, for the in-process path


async def run_clients(
    lanes: list[list[Any]], clients: int, work: Callable[[int, Any], Awaitable[None]]
) -> float:
    """Seconds for ``clients`` clients, running at once, to send every lane's items.

    Client ``i`` sends lane ``i % len(lanes)`` in order: one lane per client is one device sending
    its own batches; a single lane is a queue any free client takes the next item from.
    """
    queues = [list(reversed(lane)) for lane in lanes]

    async def client(index: int) -> None:
        queue = queues[index % len(queues)]
        while queue:
            await work(index, queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(clients)))
    return time.perf_counter() - started


async def copy_rows(conn: AsyncConnection, batch: list[Row]) -> None:
    await conn.execute(_STAGING)
    async with conn.cursor().copy(_COPY) as copy:
        copy.set_types(_TYPES)
        for row in batch:
            await copy.write_row(row)


async def with_owner_connections(
    db: Database,
    tenant: Tenant,
    lanes: list[list[list[Row]]],
    clients: int,
    step: Callable[[AsyncConnection, list[Row]], Awaitable[None]],
) -> float:
    """Run ``step`` per batch on one long-lived owner connection per client, one tenant transaction each.

    RLS is forced for the owner too, so the policy still checks every row.
    """
    async with AsyncExitStack() as stack:
        where = tenant.location
        conns = [
            await stack.enter_async_context(db.owner(where.database_name, server=where.server))
            for _ in range(clients)
        ]

        async def work(index: int, batch: list[Row]) -> None:
            conn = conns[index]
            async with conn.transaction():
                await set_tenant_context(conn, tenant.location)
                await step(conn, batch)

        return await run_clients(lanes, clients, work)


async def raw_step(tenant_id: int) -> Callable[[AsyncConnection, list[Row]], Awaitable[None]]:
    async def step(conn: AsyncConnection, batch: list[Row]) -> None:
        await copy_rows(conn, batch)
        await conn.execute(_RAW_INSERT, (tenant_id,))

    return step


async def layer_path(
    db: Database, tenant: Tenant, devices: list[Device], lanes: list[list[list[Row]]], clients: int
) -> float:
    async def work(index: int, batch: list[Row]) -> None:
        scope = devices[index % len(devices)].scope
        columns = EventColumns.of_rows(batch)
        results = await ingest_batch(db, tenant.location, columns, now=datetime.now(UTC), scope=scope)
        assert all(r.status == "accepted" for r in results)

    return await run_clients(lanes, clients, work)


async def api_path(
    base: str, tenant: Tenant, devices: list[Device], lanes: list[list[bytes]], clients: int, *, minimal: bool
) -> float:
    """``minimal``: ask for the short answer (``Prefer: return=minimal``), as camcount's edge worker does."""
    url = f"/t/{tenant.slug}/events"
    connections = [await KeepAliveClient.connect(base) for _ in range(clients)]
    prefer = {"Prefer": "return=minimal"} if minimal else {}
    headers = [
        {"Authorization": f"Bearer {devices[index % len(devices)].key}", "Content-Type": "application/json"}
        | prefer
        for index in range(clients)
    ]
    try:
        for connection, sent in zip(connections, headers, strict=True):  # warm connections and caches
            status, answer = await connection.post(url, b'{"events": []}', sent)
            assert status == 200, answer

        async def work(index: int, body: bytes) -> None:
            status, answer = await connections[index].post(url, body, headers[index])
            assert status == 200, answer
            assert pydantic_core.from_json(answer)["accepted"] == BATCH, answer[:500]

        return await run_clients(lanes, clients, work)
    finally:
        for connection in connections:
            await connection.close()


async def prefill(
    db: Database, tenant: Tenant, devices: list[Device], batches: int, rng: random.Random, now: datetime
) -> None:
    """Store ``batches`` batches before the rounds, through the data layer (ledger and rollups too),
    so that every path inserts into tables of a production size rather than into empty ones."""
    started = time.perf_counter()
    await layer_path(db, tenant, devices, device_lanes(devices, batches, "prefill", rng, now), len(devices))
    print(f"prefilled {batches * BATCH:,} events in {time.perf_counter() - started:.0f} s", flush=True)


async def add_devices(db: Database, tenant: Tenant, count: int, *, shared_cameras: bool) -> list[Device]:
    """``count`` devices, each a site of CAMERAS cameras with a key scoped to it; or one unrestricted
    key for one site's cameras, shared by all clients (``--shared-cameras``)."""
    if shared_cameras:
        cameras = await add_site_and_cameras(db, tenant, "Europe/Paris", CAMERAS)
        return [Device(cameras, await add_device_key(db, tenant), IngestScope())]
    devices = []
    for index in range(count):
        cameras = await add_site_and_cameras(db, tenant, "Europe/Paris", CAMERAS, site=f"Bench site {index}")
        async with tenant_transaction(db, tenant.location) as conn:
            cur = await conn.execute("SELECT site_id FROM cameras WHERE id = %s", (cameras[0],))
            site_id = int((await cur.fetchone() or [0])[0])
        key = await add_device_key(db, tenant, site_id=site_id)
        devices.append(Device(cameras, key, IngestScope(site_id=site_id)))
    return devices


def device_lanes(
    devices: list[Device], batches: int, prefix: str, rng: random.Random, now: datetime
) -> list[list[list[Row]]]:
    """This round's ``batches`` batches, dealt to the devices in turn: one lane of batches per device."""
    count = len(devices)
    return [
        make_batches(f"{prefix}d{index}", len(range(index, batches, count)), device.cameras, rng, now)
        for index, device in enumerate(devices)
    ]


async def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="camcount-bench-"))
    settings = bench_settings(DBNAME, home)
    header = machine()
    rng = random.Random(1)
    now = datetime.now(UTC)
    paths = args.paths + (["api-baseline"] if args.baseline_tree else [])
    rates: dict[str, list[float]] = {path: [] for path in paths}
    spent: dict[str, list[CpuSeconds]] = {path: [] for path in paths}
    async with bench_database(settings, DBNAME, fresh=True) as db:
        tenant = (
            await create_tenant(
                db,
                TenantRequest.parse("bench-ingest", name="Bench ingest", placement=args.placement),
                actor="bench",
            )
        ).tenant
        devices = await add_devices(db, tenant, args.concurrency, shared_cameras=args.shared_cameras)
        await lift_limits(db, tenant)
        if args.prefill:
            await prefill(db, tenant, devices, args.prefill // BATCH, rng, now)
        with ExitStack() as servers:
            base = servers.enter_context(api_server(settings, workers=args.workers))
            bases = {"api": base, "api-full": base}
            if args.baseline_tree:
                src = str(Path(args.baseline_tree).resolve() / "src")
                bases["api-baseline"] = servers.enter_context(api_server(settings, pythonpath=src))
            api_pids = set().union(*(server_pids(int(url.rsplit(":", 1)[1])) for url in bases.values()))
            for round_ in range(args.rounds):
                order = list(paths)
                rng.shuffle(order)
                for path in order:
                    lanes = device_lanes(devices, args.batches, f"{path}{round_}", rng, now)
                    bodies = (
                        [[as_body(b) for b in lane] for lane in lanes] if path in bases else []
                    )  # a device's work, not measured
                    before = cpu_by_group(api_pids)
                    if path in bases:
                        minimal = path != "api-full"
                        seconds = await api_path(
                            bases[path], tenant, devices, bodies, args.concurrency, minimal=minimal
                        )
                    elif path == "raw":
                        step = await raw_step(tenant.id)
                        seconds = await with_owner_connections(db, tenant, lanes, args.concurrency, step)
                    else:
                        seconds = await layer_path(db, tenant, devices, lanes, args.concurrency)
                    spent[path].append(cpu_by_group(api_pids) - before)
                    rates[path].append(args.batches * BATCH / seconds)
                    print(f"round {round_ + 1} {path:>12}: {rates[path][-1]:>9,.0f} events/s", flush=True)
        async with tenant_transaction(db, tenant.location) as conn:
            cur = await conn.execute("SELECT count(*) FROM counting_results")
            stored = (await cur.fetchone() or [0])[0]
    expected = args.rounds * args.batches * BATCH * len(paths) + args.prefill // BATCH * BATCH
    assert stored == expected, (stored, expected)
    summary = {path: median(values) for path, values in rates.items()}
    events = args.rounds * args.batches * BATCH
    cpu = {path: _per_thousand(parts, events) for path, parts in spent.items()}
    for path, rate in summary.items():
        c = cpu[path]
        print(f"{path:>12}: median {rate:>9,.0f} events/s; CPU ms per 1,000 events: postgres {c.postgres:.1f}, "
              f"api {c.api:.1f}, client {c.client:.1f}, other {c.other:.1f}, total {c.total:.1f}")  # fmt: skip
    if not {"api", "raw"} <= summary.keys():
        return
    ratio = summary["api"] / summary["raw"]
    paired = median([api / raw for api, raw in zip(rates["api"], rates["raw"], strict=True)])
    print(f"ratio api/raw = {ratio:.2f} (target >= 0.8); median of the rounds' own ratios {paired:.2f}")
    if not args.no_write:
        write_section("Ingestion", report(args, header, rates, summary, (ratio, paired), cpu))


def _per_thousand(parts: list[CpuSeconds], events: int) -> CpuSeconds:
    """CPU milliseconds per 1,000 events, over all rounds of a path."""
    scale = 1e6 / events
    return CpuSeconds(
        postgres=sum(p.postgres for p in parts) * scale,
        api=sum(p.api for p in parts) * scale,
        client=sum(p.client for p in parts) * scale,
        other=sum(p.other for p in parts) * scale,
    )


def report(
    args: argparse.Namespace,
    header: str,
    rates: dict[str, list[float]],
    summary: dict[str, float],
    ratios: tuple[float, float],
    cpu: dict[str, CpuSeconds],
) -> str:
    ratio, paired = ratios
    baseline = (
        f"\n- `api-baseline`: `POST /events` served by the code of `{args.baseline_tree}` (another checkout),\n"
        "  same database, same load, interleaved with the others."
        if args.baseline_tree
        else ""
    )
    rows = "\n".join(
        f"| {path} | {summary[path]:,.0f} | {', '.join(f'{r:,.0f}' for r in rates[path])} | "
        f"{summary[path] / summary['raw']:.2f} |"
        for path in summary
    )
    raw_cpu, api_cpu = cpu["raw"].total, cpu["api"].total
    load = (
        f"{args.concurrency} clients sending random picks of one site's 10 cameras"
        if args.shared_cameras
        else f"{args.concurrency} devices at once (each a site of 10 cameras with its own key, sending its batches in turn)"
    )
    cpu_rows = "\n".join(
        f"| {path} | {c.postgres:.1f} | {c.api:.1f} | {c.client:.1f} | {c.other:.1f} | {c.total:.1f} |"
        for path, c in cpu.items()
    )
    return f"""
Measured {stamp()} on {header}. Client, server and PostgreSQL share the
same 2 cores; compare the ratios, not the absolute numbers.

Command: `.venv/bin/python -m bench.ingest --batches {args.batches} --rounds {args.rounds} --concurrency {args.concurrency} --workers {args.workers} --placement {args.placement}{" --shared-cameras" if args.shared_cameras else ""}{f" --prefill {args.prefill}" if args.prefill else ""}`
(the API as `camcount serve --workers {args.workers}`, quotas and rate limits enforced, the tenant's limits raised out of the way)
(batches of 1,000 events, {args.batches * 1000:,} fresh events per path and round, paths interleaved in
random order each round, {load} in every path, one {args.placement} tenant in a dedicated
database `{DBNAME}`{f", holding {args.prefill // BATCH * BATCH:,} events stored before the first round" if args.prefill else ""}).

| path | events/s (median) | per round | ratio to raw |
|---|---|---|---|
{rows}

CPU per 1,000 events, all rounds (`bench/cpu.py`: PostgreSQL's processes, the API server's, this
client's, and the rest of what the machine's cores did: the kernel's work not charged to a process,
and other programs):

| path | postgres ms | api server ms | client ms | other ms | total ms |
|---|---|---|---|---|---|
{cpu_rows}

**Ratio `POST /events` / raw COPY + ON CONFLICT: {ratio:.2f}** (medians of the paths' rates; target
>= 0.8). The median of each round's own api/raw ratio: {paired:.2f}.

What bounds it on this machine: client, server and PostgreSQL share the 2 cores, so once the cores
are busy the ratio cannot exceed raw's CPU per event over the API's: {raw_cpu:.1f} / {api_cpu:.1f} ms =
**{raw_cpu / api_cpu:.2f}** in this run. PostgreSQL: {cpu["api"].postgres:.1f} ms against
{cpu["raw"].postgres:.1f} ms (the API's extra is the `counting_event_ids` ledger that makes (camera,
event_id) unique, and the rollups); the rest of the machine: {cpu["api"].other:.1f} ms against
{cpu["raw"].other:.1f} ms. The API process: {cpu["api"].api:.1f} ms (parsing and
checking 1,000 JSON events, encoding the columns, uvicorn, FastAPI, psycopg).

- `api`: JSON through `camcount serve` ({args.workers} worker(s); uvicorn with uvloop and camcount's httptools protocol) with the device's key,
  posted by `bench/http_client.py` (keep-alive, the request in one write; httpx cost the shared
  cores about 4 ms of CPU per batch) with `Prefer: return=minimal`, as camcount's edge worker sends
  it; idempotency by (camera, event_id) in `counting_event_ids`, 15-minute rollups in the same
  statement, answer after the commit.
- `api-full`: the same without `Prefer`: the answer lists all 1,000 events' outcomes (about 55 KB
  to encode, send and parse).
- `raw`: binary `COPY` into a temporary staging table, `INSERT INTO counting_results ... ON CONFLICT
  DO NOTHING` (its primary key, which holds occurred_at), one transaction per batch on long-lived
  owner connections (RLS is forced for the owner too).
- `layer`: `ingest_batch` in process (application role pool; the tenant context and the all-new
  ingestion statement over seven binary arrays in one round trip and one transaction), no HTTP, no JSON.{baseline}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Rounds of a few tenths of a second, on this kind of machine, left a run's ratio to chance
    # (0.77 to 0.87 in three runs of 40 batches and 3 rounds): the default is long enough to read.
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 per path and round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="clients sending at once, in every path (an API serves many devices)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of the API (camcount serve --workers)"
    )
    parser.add_argument(
        "--shared-cameras",
        action="store_true",
        help="all clients send random picks of one site's 10 cameras (instead of one device per client)",
    )
    parser.add_argument(
        "--placement",
        default="pooled",
        choices=["pooled", "schema", "database"],
        help="the bench tenant's placement",
    )
    parser.add_argument(
        "--paths",
        type=lambda text: text.split(","),
        default=["api", "api-full", "raw", "layer"],
        help="comma-separated subset of api,api-full,raw,layer (profiling one path); the ratio needs api and raw",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="events stored before the rounds (whole batches), so the paths insert into tables of that size",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument(
        "--baseline-tree", help="another checkout whose POST /events is measured too, as api-baseline"
    )
    return parser.parse_args()


if __name__ == "__main__":
    uvloop.run(main(parse_args()))  # the same event loop as the API server, for every path
