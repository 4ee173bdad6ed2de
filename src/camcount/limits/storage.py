"""Storage per tenant, measured on a schedule, and the refusal of ingestion over the limit.

Measurement (``measure_storage``):

- **schema** and **database** placements: exact. The sum of ``pg_total_relation_size`` (heap,
  TOAST and indexes) of every table and partition in the tenant's own schema (in the main
  database, or schema ``tenant`` in its own database). Catalog overhead of an own database is not
  counted: it is ours, not the tenant's data.
- **pooled**: an estimate. For each shared table, the tenant's exact row count (counted inside its
  tenant-scoped transaction, so RLS confines it) times the table's average bytes per row (total
  size of the table and its partitions divided by the rows of all pooled tenants, counted in the
  same run). Rows of one table vary little in size, so the error is a few percent; the method is
  stored with the figure (``exact`` or ``estimate``).

One GB is 1024³ bytes. Ingestion is refused (HTTP 507) once a tenant is above its ``storage_gb``
limit plus a grace margin (``STORAGE_GRACE`` = 10%): the measurement lags, so the margin avoids
refusing on a stale figure just at the line while still stopping runaway growth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection, sql

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import InsufficientStorage
from camcount.limits.periods import local_date
from camcount.tenancy.lifecycle import list_tenants
from camcount.tenancy.models import POOLED_SCHEMA, Placement, Tenant

GIB = 1024**3
STORAGE_GRACE = Decimal("0.10")
CHECK_CACHE_SECONDS = 10.0

_SCHEMA_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'm')
"""

# Top-level tables of the shared schema with the total size of the table and all its partitions.
_POOLED_TABLES = """
SELECT p.relname,
       coalesce((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                 WHERE c.oid = p.oid OR c.oid IN (SELECT relid FROM pg_partition_tree(p.oid))), 0)
FROM pg_class p JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = %s AND p.relkind IN ('r', 'p') AND NOT p.relispartition
ORDER BY p.relname
"""


class StorageExceeded(InsufficientStorage):
    """The tenant is over its storage limit plus the grace margin (HTTP 507)."""

    def __init__(self, used_bytes: int, limit_gb: int) -> None:
        used_gb = (Decimal(used_bytes) / GIB).quantize(Decimal("0.01"))
        super().__init__(
            f"storage limit reached: storage_gb {used_gb} of {limit_gb}; ingestion is paused until data "
            "is deleted (retention) or the limit is raised (a larger plan or an operator override)"
        )
        self.used_bytes = used_bytes
        self.limit_gb = limit_gb


@dataclass(frozen=True)
class StorageFigure:
    tenant_id: int
    slug: str
    bytes: int
    method: str

    @property
    def gb(self) -> Decimal:
        return (Decimal(self.bytes) / GIB).quantize(Decimal("0.001"))


async def _schema_bytes(conn: AsyncConnection, schema: str) -> int:
    cur = await conn.execute(_SCHEMA_SIZE, (schema,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _pooled_row_counts(db: Database, tenant: Tenant, tables: list[str]) -> dict[str, int]:
    if not tables:
        return {}
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {}").format(sql.Literal(t), sql.Identifier(t)) for t in tables
    )
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(query)
        return {name: int(n) for name, n in await cur.fetchall()}


async def measure_tenant_storage(
    db: Database, tenants: list[Tenant], *, pooled_sizes: dict[str, int] | None = None
) -> list[StorageFigure]:
    """Measure the given tenants (pooled estimates are relative to the pooled tenants given)."""
    figures: list[StorageFigure] = []
    pooled = [t for t in tenants if t.placement is Placement.POOLED]
    if pooled:
        async with db.owner() as conn:
            cur = await conn.execute(_POOLED_TABLES, (POOLED_SCHEMA,))
            sizes = pooled_sizes or {name: int(size) for name, size in await cur.fetchall()}
        counts = {t.id: await _pooled_row_counts(db, t, list(sizes)) for t in pooled}
        totals = {name: sum(c.get(name, 0) for c in counts.values()) for name in sizes}
        for tenant in pooled:
            estimate = Decimal(0)
            for name, size in sizes.items():
                rows = counts[tenant.id].get(name, 0)
                if rows and totals[name]:
                    estimate += Decimal(size) * rows / totals[name]
            figures.append(StorageFigure(tenant.id, tenant.slug, int(estimate), "estimate"))
    for tenant in tenants:
        if tenant.placement is Placement.SCHEMA:
            async with db.owner() as conn:
                size = await _schema_bytes(conn, tenant.schema_name)
        elif tenant.placement is Placement.DATABASE:
            async with db.owner(tenant.database_name, server=tenant.server) as conn:
                size = await _schema_bytes(conn, tenant.schema_name)
        else:
            continue
        figures.append(StorageFigure(tenant.id, tenant.slug, size, "exact"))
    return figures


async def save_storage(
    db: Database, figures: list[StorageFigure], tenants: list[Tenant], now: datetime
) -> None:
    """Store the figures, the ``storage_gb`` usage and the day's peak in the usage history."""
    zones = {t.id: t.timezone for t in tenants}
    async with db.owner() as conn, conn.transaction():
        for f in figures:
            await conn.execute(
                """
                INSERT INTO control.tenant_storage (tenant_id, bytes, method, measured_at) VALUES (%s, %s, %s, %s)
                ON CONFLICT (tenant_id) DO UPDATE
                    SET bytes = EXCLUDED.bytes, method = EXCLUDED.method, measured_at = EXCLUDED.measured_at
                """,
                (f.tenant_id, f.bytes, f.method, now),
            )
            await conn.execute(
                "UPDATE control.tenant_limits SET current_usage = %s, updated_at = now() "
                "WHERE tenant_id = %s AND resource = 'storage_gb'",
                (f.bytes // GIB, f.tenant_id),
            )
            await conn.execute(
                """
                INSERT INTO control.tenant_resource_usage (tenant_id, resource, usage_date, usage_value)
                VALUES (%s, 'storage_bytes', %s, %s)
                ON CONFLICT (tenant_id, resource, usage_date) DO UPDATE
                    SET usage_value = greatest(control.tenant_resource_usage.usage_value, EXCLUDED.usage_value),
                        updated_at = now()
                """,
                (f.tenant_id, local_date(now, zones[f.tenant_id]), f.bytes),
            )


async def measure_storage(db: Database, *, now: datetime) -> dict[str, Any]:
    """Scheduled job: measure every tenant's storage. Returns counts per method."""
    async with db.owner() as conn:
        tenants = [t for t in await list_tenants(conn) if t.status.value != "inactive"]
    figures = await measure_tenant_storage(db, tenants)
    await save_storage(db, figures, tenants, now)
    _cache.clear()
    return {
        "measured": len(figures),
        "exact": sum(1 for f in figures if f.method == "exact"),
        "estimate": sum(1 for f in figures if f.method == "estimate"),
        "bytes": sum(f.bytes for f in figures),
    }


_cache: dict[int, tuple[float, int | None, int | None]] = {}


async def check_storage_allows_ingest(db: Database, tenant: Tenant) -> None:
    """Raise StorageExceeded when the last measurement is above the limit plus the grace margin.

    One small control-plane read per tenant every ``CHECK_CACHE_SECONDS`` at most (cached in
    process): the measurement itself only changes on the schedule.
    """
    cached = _cache.get(tenant.id)
    if cached is None or time.monotonic() - cached[0] > CHECK_CACHE_SECONDS:
        async with db.app_control() as conn:
            cur = await conn.execute(
                """
                SELECT (SELECT bytes FROM control.tenant_storage WHERE tenant_id = %(t)s),
                       (SELECT limit_value FROM control.tenant_limits WHERE tenant_id = %(t)s
                                                                      AND resource = 'storage_gb')
                """,
                {"t": tenant.id},
            )
            row = await cur.fetchone()
        assert row is not None
        cached = (time.monotonic(), row[0], row[1])
        _cache[tenant.id] = cached
    _, used, limit = cached
    if used is None or limit is None:
        return
    if Decimal(used) > Decimal(limit) * GIB * (1 + STORAGE_GRACE):
        raise StorageExceeded(int(used), int(limit))
