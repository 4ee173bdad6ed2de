"""Usage analytics: per tenant and resource, the limit, the usage, the percentage and a status.

Statuses (the seed's view, with its names): LOW below 50%, MEDIUM from 50%, HIGH from 80%,
LIMIT_REACHED from 100% (a limit of 0 is always reached). Quotas show the units accepted in their
current period, from the per-day history each API process writes every second (not
``current_usage``, which also counts units processes reserved and have not used yet), and when the
period resets.
Entity gauges come from the last measurement (``measure_usage``) or, for one tenant, a live count;
storage from the last storage measurement.

Crossing 80% and 100% is recorded once per tenant, resource, threshold and period in
``control.usage_threshold_events`` (quota period; the local calendar month for gauges), for
monitoring and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection, sql

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.db.unnest import unnest_params
from camcount.errors import InvalidInput
from camcount.limits.entities import ENTITY_RESOURCES
from camcount.limits.periods import local_date, period_bounds
from camcount.limits.storage import GIB, measure_storage
from camcount.tenancy.lifecycle import list_tenants, require_tenant
from camcount.tenancy.models import Tenant


class UsageStatus(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    LIMIT_REACHED = "LIMIT_REACHED"


def usage_percent(usage: Decimal, limit: int) -> Decimal | None:
    if limit <= 0:
        return None
    return (usage * 100 / limit).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def status_for(usage: Decimal, limit: int) -> UsageStatus:
    """Compared exactly (not on the rounded percentage): 79.999% is HIGH only from 80%."""
    if limit <= 0 or usage >= limit:
        return UsageStatus.LIMIT_REACHED
    if usage * 100 >= limit * 80:
        return UsageStatus.HIGH
    if usage * 100 >= limit * 50:
        return UsageStatus.MEDIUM
    return UsageStatus.LOW


@dataclass(frozen=True)
class UsageRow:
    tenant_id: int
    tenant: str
    plan: str
    resource: str
    limit: int
    usage: Decimal
    reset_period: str | None
    period_start: datetime | None
    resets_at: datetime | None
    is_override: bool

    @property
    def percent(self) -> Decimal | None:
        return usage_percent(self.usage, self.limit)

    @property
    def status(self) -> UsageStatus:
        return status_for(self.usage, self.limit)

    def as_dict(self, *, include_tenant: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "resource": self.resource,
            "limit": self.limit,
            "usage": str(self.usage),
            "percent": str(self.percent) if self.percent is not None else None,
            "status": str(self.status),
            "reset_period": self.reset_period,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "is_override": self.is_override,
        }
        if include_tenant:
            data = {"tenant": self.tenant, "plan": self.plan, **data}
        return data


_REPORT = """
SELECT t.id, t.slug, t.plan, t.timezone, tl.resource, tl.limit_value, tl.current_usage, tl.reset_period,
       tl.is_override, ts.bytes
FROM control.tenants t
JOIN control.tenant_limits tl ON tl.tenant_id = t.id
LEFT JOIN control.tenant_storage ts ON ts.tenant_id = t.id
WHERE t.status = 'active' AND (%(slug)s::text IS NULL OR t.slug = %(slug)s)
ORDER BY t.slug, tl.resource
"""


async def _report_rows(conn: AsyncConnection, slug: str | None, now: datetime) -> list[UsageRow]:
    cur = await conn.execute(_REPORT, {"slug": slug})
    rows: list[UsageRow] = []
    quota_days: dict[tuple[int, str], tuple[date, date]] = {}  # a quota's period in local days
    for (
        tid,
        tslug,
        plan,
        tz,
        resource,
        limit,
        current,
        period,
        override,
        stored_bytes,
    ) in await cur.fetchall():
        usage = Decimal(current)
        start = end = None
        if period is not None:
            start, end = period_bounds(period, now, tz)
            quota_days[(tid, resource)] = (local_date(start, tz), local_date(end, tz))
            usage = Decimal(0)  # what the quota accepted this period: _with_quota_use
        elif resource == "storage_gb" and stored_bytes is not None:
            usage = (Decimal(stored_bytes) / GIB).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        rows.append(UsageRow(tid, tslug, plan, resource, int(limit), usage, period, start, end, override))
    return await _with_quota_use(conn, rows, quota_days)


# Units a quota accepted in its period: the per-day history every API process writes each second.
# (current_usage counts the units *granted* to processes, which they may not have used yet.)
_QUOTA_USE = """
SELECT q.tenant_id, q.resource, coalesce(sum(u.usage_value), 0)
FROM unnest(%(tenant_ids)s::int8[], %(resources)s::text[], %(firsts)s::date[], %(ends)s::date[])
    AS q (tenant_id, resource, first_day, end_day)
LEFT JOIN control.tenant_resource_usage u
    ON u.tenant_id = q.tenant_id AND u.resource = q.resource
   AND u.usage_date >= q.first_day AND u.usage_date < q.end_day
GROUP BY 1, 2
"""


async def _with_quota_use(
    conn: AsyncConnection, rows: list[UsageRow], quota_days: dict[tuple[int, str], tuple[date, date]]
) -> list[UsageRow]:
    """The rows, each quota's usage being the units it accepted this period rather than granted.

    A lease holds units a process has reserved but not used (up to 1% of the limit per process
    for a busy tenant, see :mod:`camcount.limits.quotas`): the usage a tenant is shown is what
    its requests and events used, to within the second before the history's last write.
    """
    if not quota_days:
        return rows
    periods = ((tenant_id, resource, *days) for (tenant_id, resource), days in quota_days.items())
    params = unnest_params(periods, "tenant_ids", "resources", "firsts", "ends")
    cur = await conn.execute(_QUOTA_USE, params)
    used = {(tid, resource): max(int(n), 0) for tid, resource, n in await cur.fetchall()}
    return [replace(r, usage=Decimal(used.get((r.tenant_id, r.resource), r.usage))) for r in rows]


async def usage_report(
    db: Database,
    *,
    tenant_slug: str | None = None,
    status: str | None = None,
    live: bool = False,
    now: datetime | None = None,
) -> list[UsageRow]:
    """Usage of every active tenant (or one); ``live`` recounts one tenant's entities first."""
    now = now or datetime.now(UTC)
    wanted = None
    if status is not None:
        try:
            wanted = UsageStatus(status.upper())
        except ValueError:
            raise InvalidInput(
                "status", f"{status[:30]!r} is not LOW, MEDIUM, HIGH or LIMIT_REACHED"
            ) from None
    if live and tenant_slug is not None:
        async with db.app_control() as conn:
            tenant = await require_tenant(conn, tenant_slug)
        await _save_entity_counts(db, [tenant], {tenant.id: await count_entities(db, tenant)}, now)
    async with db.app_control() as conn:  # as the application role: it is granted these reads
        if tenant_slug is not None:
            await require_tenant(conn, tenant_slug)
        rows = await _report_rows(conn, tenant_slug, now)
    return [r for r in rows if wanted is None or r.status is wanted]


async def count_entities(db: Database, tenant: Tenant) -> dict[str, int]:
    """How many cameras, users, sites and device keys the tenant has now (one transaction)."""
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {} WHERE {}").format(
            sql.Literal(resource), sql.Identifier(table), sql.SQL(condition)
        )
        for resource, (table, condition) in ENTITY_RESOURCES.items()
    )
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(query)
        return {resource: int(n) for resource, n in await cur.fetchall()}


async def _save_entity_counts(
    db: Database, tenants: list[Tenant], counts: dict[int, dict[str, int]], now: datetime
) -> None:
    async with db.app_control() as conn, conn.transaction():
        for tenant in tenants:
            day = local_date(now, tenant.timezone)
            for resource, n in counts[tenant.id].items():
                await conn.execute(
                    "UPDATE control.tenant_limits SET current_usage = %s, updated_at = now() "
                    "WHERE tenant_id = %s AND resource = %s",
                    (n, tenant.id, resource),
                )
                # The day's peak: billing averages the daily values of gauges.
                await conn.execute(
                    """
                    INSERT INTO control.tenant_resource_usage (tenant_id, resource, usage_date, usage_value)
                    VALUES (%s, %s, %s, %s)
                    ON CONFLICT (tenant_id, resource, usage_date) DO UPDATE
                        SET usage_value = greatest(control.tenant_resource_usage.usage_value,
                                                   EXCLUDED.usage_value), updated_at = now()
                    """,
                    (tenant.id, resource, day, n),
                )


async def record_crossings(db: Database, *, now: datetime) -> int:
    """Record 80% and 100% crossings not yet recorded for their period. Returns how many are new."""
    async with db.owner() as conn:
        rows = await _report_rows(conn, None, now)
        cur = await conn.execute("SELECT id, timezone FROM control.tenants")
        zones = dict(await cur.fetchall())
    new = 0
    async with db.owner() as conn, conn.transaction():
        for row in rows:
            if row.status not in (UsageStatus.HIGH, UsageStatus.LIMIT_REACHED) or row.limit <= 0:
                continue
            start = row.period_start or period_bounds("monthly", now, zones[row.tenant_id])[0]
            for threshold in (80, 100):
                if row.usage * 100 >= row.limit * threshold:
                    cur = await conn.execute(
                        """
                        INSERT INTO control.usage_threshold_events
                            (tenant_id, resource, threshold, period_start, usage_value, limit_value)
                        VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
                        """,
                        (row.tenant_id, row.resource, threshold, start, int(row.usage), row.limit),
                    )
                    new += cur.rowcount
    return new


async def threshold_events(
    db: Database, *, tenant_id: int | None = None, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    async with db.app_control() as conn:
        cur = await conn.execute(
            """
            SELECT e.at, t.slug, e.resource, e.threshold, e.period_start, e.usage_value, e.limit_value
            FROM control.usage_threshold_events e JOIN control.tenants t ON t.id = e.tenant_id
            WHERE (%(t)s::bigint IS NULL OR e.tenant_id = %(t)s) AND (%(s)s::timestamptz IS NULL OR e.at >= %(s)s)
            ORDER BY e.at DESC, e.id DESC LIMIT %(n)s
            """,
            {"t": tenant_id, "s": since, "n": limit},
        )
        names = ("at", "tenant", "resource", "threshold", "period_start", "usage", "limit")
        return [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in zip(names, row, strict=True)}
            for row in await cur.fetchall()
        ]


async def measure_usage(db: Database, *, now: datetime) -> dict[str, Any]:
    """Scheduled job: storage and entity counts of every tenant, then threshold crossings."""
    storage = await measure_storage(db, now=now)
    async with db.owner() as conn:
        tenants = [t for t in await list_tenants(conn) if t.status.value == "active"]
    counts = {t.id: await count_entities(db, t) for t in tenants}
    await _save_entity_counts(db, tenants, counts, now)
    return {**storage, "tenants": len(tenants), "crossings": await record_crossings(db, now=now)}
