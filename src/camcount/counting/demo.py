"""Demo tenants, one per placement, with a site, cameras and a few days of counts.

Idempotent: tenants are created if missing, sites and cameras looked up by name, and events carry
deterministic ids, so a second run stores nothing twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from camcount.counting.ingest import CountEvent, ingest_events
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant
from camcount.tenancy.provisioning import TenantRequest, create_tenant

DEMO_DAYS = 3
STORE_HOURS = {day: [["09:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    plan: str
    placement: str
    timezone: str
    site: str
    cameras: tuple[str, ...]


DEMO_TENANTS = (
    DemoTenant("acme-retail", "Acme Retail", "basic", "pooled", "Europe/Paris", "Paris flagship",
               ("Main entrance", "Side door")),
    DemoTenant("globex-mall", "Globex Mall", "premium", "schema", "America/New_York", "Globex Center",
               ("North gate", "South gate", "Parking ramp")),
    DemoTenant("initech-arena", "Initech Arena", "enterprise", "database", "Asia/Kolkata", "Arena",
               ("Gate A", "Gate B")),
)  # fmt: skip


@dataclass(frozen=True)
class DemoSummary:
    tenant: Tenant
    cameras: int
    events: int


async def provision_demo(db: Database, *, actor: str, now: datetime | None = None) -> list[DemoSummary]:
    now = now or datetime.now(UTC)
    summaries = []
    for demo in DEMO_TENANTS:
        request = TenantRequest.parse(
            demo.slug, name=demo.name, plan=demo.plan, placement=demo.placement, timezone=demo.timezone
        )
        tenant = (await create_tenant(db, request, actor=actor)).tenant
        async with tenant_transaction(db, tenant.location) as conn:
            camera_ids = await _ensure_site_and_cameras(conn, tenant.id, demo)
            await ingest_events(conn, tenant.id, _sample_events(demo.slug, camera_ids, now), now=now)
            summaries.append(DemoSummary(tenant, len(camera_ids), await _count_events(conn)))
    return summaries


async def _ensure_site_and_cameras(conn: AsyncConnection, tenant_id: int, demo: DemoTenant) -> list[int]:
    await conn.execute(
        "INSERT INTO sites (tenant_id, name, timezone, business_hours) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, name) DO NOTHING",
        (tenant_id, demo.site, demo.timezone, Jsonb(STORE_HOURS)),
    )
    cur = await conn.execute("SELECT id FROM sites WHERE name = %s", (demo.site,))
    row = await cur.fetchone()
    assert row is not None
    site_id = row[0]
    camera_ids = []
    for index, name in enumerate(demo.cameras):
        await conn.execute(
            "INSERT INTO cameras (tenant_id, site_id, name, location, config) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, site_id, name) DO NOTHING",
            (tenant_id, site_id, name, f"{demo.site}, door {index + 1}", Jsonb({"line": [0, 180, 640, 180]})),
        )
        cur = await conn.execute("SELECT id FROM cameras WHERE site_id = %s AND name = %s", (site_id, name))
        camera = await cur.fetchone()
        assert camera is not None
        camera_ids.append(camera[0])
    return camera_ids


def _sample_events(slug: str, camera_ids: list[int], now: datetime) -> list[CountEvent]:
    """Hourly in/out counts for the last few days; the seed makes the same counts every run."""
    rng = random.Random(slug)  # noqa: S311 (demo data, not security)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=DEMO_DAYS)
    events = []
    for hour in range(DEMO_DAYS * 24):
        at = start + timedelta(hours=hour)
        for camera_id in camera_ids:
            for count_type in ("in", "out"):
                events.append(
                    CountEvent(
                        event_id=f"demo-{at:%Y%m%dT%H}-{count_type}",
                        camera_id=camera_id,
                        count_type=count_type,
                        count_value=rng.randint(0, 40),
                        occurred_at=at,
                        confidence=round(rng.uniform(0.7, 0.99), 3),
                        object_class="person",
                    )
                )
    return events


async def _count_events(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM counting_results")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
