"""Per-tenant metrics: what ``camcount tenant metrics`` and ``/admin/tenants/{slug}/metrics`` show.

Every figure is the tenant's own (the seed reported the whole database's size for every tenant
and multiplied rows through a cartesian join):

- cameras, sites, users (active ones), counted in the tenant's own tables inside its
  tenant-scoped transaction, so RLS confines every count;
- events in the last hour and the last 24 hours, and their average confidence (events with a
  confidence only), by ``occurred_at`` up to ``now``; the time of the last event;
- storage in bytes: exact for schema and database placements (the sum of ``pg_total_relation_size``
  over the tenant's schema: tables, partitions, TOAST and indexes), an estimate for pooled tenants
  (the tenant's share of the rows of each shared table times the table's size, see
  :mod:`camcount.limits.storage`), taken from the hourly ``usage_measure`` job's figure or
  measured on the spot when there is none yet;
- ingestion outcomes over the last 24 hours and the error rate (rejected / received), from
  ``control.ingestion_counters``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.limits.storage import measure_tenant_storage
from camcount.tenancy.lifecycle import list_tenants
from camcount.tenancy.models import Placement, Tenant

_ENTITIES = """
SELECT (SELECT count(*) FROM cameras), (SELECT count(*) FROM sites), (SELECT count(*) FROM users WHERE is_active)
"""
_EVENTS = """
SELECT count(*) FILTER (WHERE occurred_at > %(hour_ago)s), count(*), avg(confidence)
FROM counting_results WHERE occurred_at > %(day_ago)s AND occurred_at <= %(now)s
"""
_LAST_EVENT = "SELECT max(occurred_at) FROM counting_results"
_INGESTION = """
SELECT coalesce(sum(accepted), 0), coalesce(sum(duplicate), 0), coalesce(sum(rejected), 0)
FROM control.ingestion_counters WHERE tenant_id = %s AND hour > %s AND hour <= %s
"""


@dataclass(frozen=True)
class TenantMetrics:
    tenant: Tenant
    cameras: int
    sites: int
    users: int
    events_last_hour: int
    events_last_day: int
    average_confidence: float | None
    last_event_at: datetime | None
    storage_bytes: int
    storage_method: str  # exact | estimate
    ingestion_accepted: int
    ingestion_duplicate: int
    ingestion_rejected: int
    measured_at: datetime

    @property
    def ingestion_error_rate(self) -> float | None:
        received = self.ingestion_accepted + self.ingestion_duplicate + self.ingestion_rejected
        return self.ingestion_rejected / received if received else None

    def as_dict(self) -> dict[str, Any]:
        rate = self.ingestion_error_rate
        return {
            "tenant": self.tenant.slug,
            "placement": str(self.tenant.placement),
            "status": str(self.tenant.status),
            "plan": self.tenant.plan,
            "cameras": self.cameras,
            "sites": self.sites,
            "users": self.users,
            "events_last_hour": self.events_last_hour,
            "events_last_day": self.events_last_day,
            "average_confidence": None
            if self.average_confidence is None
            else round(self.average_confidence, 4),
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "storage_bytes": self.storage_bytes,
            "storage_method": self.storage_method,
            "ingestion_last_day": {
                "accepted": self.ingestion_accepted,
                "duplicate": self.ingestion_duplicate,
                "rejected": self.ingestion_rejected,
                "error_rate": None if rate is None else round(rate, 4),
            },
            "measured_at": self.measured_at.isoformat(),
        }


async def _storage(db: Database, tenants: list[Tenant]) -> dict[int, tuple[int, str]]:
    """Exact sizes measured now; pooled estimates from the last measurement, else measured now."""
    result: dict[int, tuple[int, str]] = {}
    pooled = [t for t in tenants if t.placement is Placement.POOLED]
    if pooled:
        async with db.owner() as conn:
            cur = await conn.execute(
                "SELECT tenant_id, bytes, method FROM control.tenant_storage WHERE tenant_id = ANY(%s)",
                ([t.id for t in pooled],),
            )
            result.update({tid: (int(size), method) for tid, size, method in await cur.fetchall()})
            unmeasured = [t for t in pooled if t.id not in result]
            if unmeasured:
                # A fair estimate needs every pooled tenant's rows, not only the ones asked about.
                everyone = [t for t in await list_tenants(conn) if t.placement is Placement.POOLED]
        if unmeasured:
            for figure in await measure_tenant_storage(db, everyone):
                result.setdefault(figure.tenant_id, (figure.bytes, figure.method))
    own = [t for t in tenants if t.placement is not Placement.POOLED]
    for figure in await measure_tenant_storage(db, own):
        result[figure.tenant_id] = (figure.bytes, figure.method)
    return result


async def _one(db: Database, tenant: Tenant, storage: tuple[int, str], *, now: datetime) -> TenantMetrics:
    async with tenant_transaction(db, tenant.location) as conn:
        entities = await (await conn.execute(_ENTITIES)).fetchone()
        events = await (
            await conn.execute(
                _EVENTS,
                {"hour_ago": now - timedelta(hours=1), "day_ago": now - timedelta(days=1), "now": now},
            )
        ).fetchone()
        last = await (await conn.execute(_LAST_EVENT)).fetchone()
    async with db.app_control() as conn:
        ingestion = await (
            await conn.execute(_INGESTION, (tenant.id, now - timedelta(days=1), now))
        ).fetchone()
    assert entities is not None
    assert events is not None
    assert last is not None
    assert ingestion is not None
    return TenantMetrics(
        tenant=tenant,
        cameras=int(entities[0]),
        sites=int(entities[1]),
        users=int(entities[2]),
        events_last_hour=int(events[0]),
        events_last_day=int(events[1]),
        average_confidence=None if events[2] is None else float(events[2]),
        last_event_at=last[0],
        storage_bytes=storage[0],
        storage_method=storage[1],
        ingestion_accepted=int(ingestion[0]),
        ingestion_duplicate=int(ingestion[1]),
        ingestion_rejected=int(ingestion[2]),
        measured_at=now,
    )


async def tenant_metrics(
    db: Database, tenants: list[Tenant], *, now: datetime, parallel: int = 4
) -> list[TenantMetrics]:
    """Metrics of the given tenants, in the order given."""
    storage = await _storage(db, tenants)
    semaphore = asyncio.Semaphore(parallel)

    async def one(tenant: Tenant) -> TenantMetrics:
        async with semaphore:
            return await _one(db, tenant, storage.get(tenant.id, (0, "estimate")), now=now)

    return list(await asyncio.gather(*(one(t) for t in tenants)))
