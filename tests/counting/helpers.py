"""Sites, cameras and events for counting tests, written through the tenant-scoped transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from camcount.accounts import device_keys
from camcount.counting.ingest import UNRESTRICTED, CountEvent, EventResult, IngestScope, ingest_events
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant


async def make_site(
    db: Database,
    tenant: Tenant,
    *,
    name: str = "Store",
    timezone: str = "UTC",
    business_hours: dict[str, Any] | None = None,
) -> int:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(
            "INSERT INTO sites (tenant_id, name, timezone, business_hours) VALUES (%s, %s, %s, %s) RETURNING id",
            (tenant.id, name, timezone, Jsonb(business_hours or {})),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def make_camera(db: Database, tenant: Tenant, site_id: int, *, name: str = "Door") -> int:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(
            "INSERT INTO cameras (tenant_id, site_id, name) VALUES (%s, %s, %s) RETURNING id",
            (tenant.id, site_id, name),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def ingest(
    db: Database, tenant: Tenant, events: list[Any], *, now: datetime, scope: IngestScope = UNRESTRICTED
) -> list[EventResult]:
    async with tenant_transaction(db, tenant.location) as conn:
        return await ingest_events(conn, tenant.id, events, now=now, scope=scope)


async def fetch(db: Database, tenant: Tenant, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


def event(camera_id: int, event_id: str, at: datetime, value: int = 1, count_type: str = "in") -> CountEvent:
    return CountEvent(event_id, camera_id, count_type, value, at, confidence=0.5)


async def make_device_key(
    db: Database, tenant: Tenant, *, site_id: int | None = None, camera_id: int | None = None
) -> str:
    """A device key (``ck_...``) as the keys API would store it: the tenant's row and the directory."""
    key = device_keys.generate()
    async with tenant_transaction(db, tenant.location) as conn:
        await conn.execute(
            "INSERT INTO api_keys (tenant_id, name, prefix, key_hash, site_id, camera_id) "
            "VALUES (%s, 'edge', %s, %s, %s, %s)",
            (tenant.id, key.prefix, key.key_hash, site_id, camera_id),
        )
    async with db.owner() as conn:
        await conn.execute(
            "INSERT INTO control.device_key_directory (prefix, tenant_id) VALUES (%s, %s)",
            (key.prefix, tenant.id),
        )
        await conn.commit()
    return key.plaintext
