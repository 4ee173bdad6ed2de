"""Demo tenants, one per placement, with a site, cameras and a few days of counts.

Idempotent: tenants are created if missing, sites and cameras looked up by name, and events carry
deterministic ids, so a second run stores nothing twice.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from camcount.accounts.users import UserRequest, create_user
from camcount.counting.ingest import CountEvent, ingest_events
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant
from camcount.tenancy.provisioning import TenantRequest, create_tenant

DEMO_DAYS = 3
DEMO_USERNAME = "owner"
DEMO_CREDENTIALS_FILE = "demo-password"
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
    username: str = DEMO_USERNAME


async def provision_demo(db: Database, *, actor: str, now: datetime | None = None) -> list[DemoSummary]:
    now = now or datetime.now(UTC)
    password = demo_password(db.settings.home)
    summaries = []
    for demo in DEMO_TENANTS:
        request = TenantRequest.parse(
            demo.slug, name=demo.name, plan=demo.plan, placement=demo.placement, timezone=demo.timezone
        )
        tenant = (await create_tenant(db, request, actor=actor)).tenant
        await _ensure_owner(db, tenant, password, actor=actor)
        async with tenant_transaction(db, tenant.location) as conn:
            camera_ids = await _ensure_site_and_cameras(conn, tenant.id, demo)
            await ingest_events(conn, tenant.id, _sample_events(demo.slug, camera_ids, now), now=now)
            summaries.append(DemoSummary(tenant, len(camera_ids), await _count_events(conn)))
    return summaries


def demo_password(home: Path) -> str:
    """The demo owners' password: generated on the first run, kept (0600) under CAMCOUNT_HOME."""
    path = home / DEMO_CREDENTIALS_FILE
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


async def _ensure_owner(db: Database, tenant: Tenant, password: str, *, actor: str) -> None:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute("SELECT 1 FROM users WHERE lower(username) = %s", (DEMO_USERNAME,))
        if await cur.fetchone():
            return
    request = UserRequest.parse(username=DEMO_USERNAME, email=f"owner@{tenant.slug}.example", role="owner",
                                password=password)  # fmt: skip
    await create_user(db, tenant, request, actor=actor)


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
    """Hourly in/out counts for the full days before today (UTC); the same counts on every run."""
    rng = random.Random(slug)  # noqa: S311 (demo data, not security)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DEMO_DAYS)
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
