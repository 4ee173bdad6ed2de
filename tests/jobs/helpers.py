"""Small helpers shared by the operations tests: a camera, events at chosen times, row counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from camcount.counting.ingest import CountEvent, ingest_events
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import Tenant


async def add_camera(
    db: Database,
    tenant: Tenant,
    *,
    timezone: str = "UTC",
    business_hours: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    name: str | None = None,
) -> int:
    """A new site with one camera; returns the camera id."""
    label = name or f"cam-{uuid.uuid4().hex[:6]}"
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(
            "INSERT INTO sites (tenant_id, name, timezone, business_hours) VALUES (%s, %s, %s, %s) RETURNING id",
            (tenant.id, f"site {label}", timezone, Jsonb(business_hours or {})),
        )
        site = await cur.fetchone()
        assert site is not None
        cur = await conn.execute(
            "INSERT INTO cameras (tenant_id, site_id, name, config, created_at) "
            "VALUES (%s, %s, %s, %s, coalesce(%s, now())) RETURNING id",
            (tenant.id, site[0], label, Jsonb(config or {}), created_at),
        )
        camera = await cur.fetchone()
        assert camera is not None
        return int(camera[0])


async def ingest_at(
    db: Database, tenant: Tenant, camera_id: int, times: Sequence[datetime], *, now: datetime,
    confidence: float | None = 0.8,
) -> None:  # fmt: skip
    """One event (count 1) per time; ``now`` is the ingestion clock."""
    events = [
        CountEvent(f"ev-{uuid.uuid4().hex}", camera_id, "in", 1, at, confidence=confidence) for at in times
    ]
    async with tenant_transaction(db, tenant.location) as conn:
        results = await ingest_events(conn, tenant.id, events, now=now)
    assert all(r.status == "accepted" for r in results), results


async def count_rows(db: Database, tenant: Tenant, table: str) -> int:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def partitions_of(db: Database, tenant: Tenant) -> set[str]:
    from camcount.tenancy.partitions import existing_partitions

    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        return await existing_partitions(conn, tenant.schema_name)


async def default_rows(db: Database, tenant: Tenant) -> int:
    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(tenant.schema_name, "counting_results_default")
            )
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0
