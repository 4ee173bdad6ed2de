"""Tenant health: named checks, each raising an issue with a reason, and a documented status.

Checks (see docs/operations.md for the table):

================================  ==========================================================  ========
check                             raised when                                                  severity
================================  ==========================================================  ========
``limit_reached``                 usage of a limit is at or above it (cameras, users, ...)     WARNING
                                  ... for a metered limit that refuses traffic                 CRITICAL
                                  (``events_per_month``, ``api_calls_per_day``)
``no_recent_events``              the tenant has active cameras and no event occurred in the   WARNING
                                  last 7 days (cameras younger than that are not counted)
``camera_silent``                 an active camera sent nothing for longer than its expected   WARNING
                                  interval, counting only its site's business hours
``ingestion_rejections``          rejected / received over the last 24 h >= 5 % (with at       WARNING
                                  least 20 events) ... >= 25 %                                 CRITICAL
``migrations_behind``             the tenant's schema lacks a migration the code has           CRITICAL
``partitions_missing``            a monthly partition ahead (next 3 months) is missing         WARNING
                                  ... the current month's is missing                           CRITICAL
================================  ==========================================================  ========

Status is the most severe issue: HEALTHY (no issue), WARNING, CRITICAL. It is not a count of
issues (the seed's mapping): five silent cameras are still a WARNING, one missing migration is
CRITICAL. Suspended and inactive tenants are expected to be quiet: only the structural checks
(migrations, partitions) apply to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from camcount.counting.business_hours import OpenInterval, open_intervals
from camcount.db import migrations as ledger
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import CamcountError
from camcount.limits.entities import ENTITY_RESOURCES
from camcount.tenancy.lifecycle import list_tenants
from camcount.tenancy.models import Status, Tenant
from camcount.tenancy.partitions import (
    PROVISIONED_PARTITIONS_AHEAD,
    existing_partitions,
    months_window,
    partition_name,
)

PARTITIONS_GRACE = timedelta(hours=2)  # two runs of the hourly partitions job


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.WARNING: 1, HealthStatus.CRITICAL: 2}
# Approximate period lengths, to ignore usage left from a period that has ended but not been reset.
_PERIOD_LENGTH = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=31),
                  "yearly": timedelta(days=366)}  # fmt: skip
_LOOKBACK = timedelta(days=8)  # business-hours arithmetic looks no further back than this


@dataclass(frozen=True)
class HealthPolicy:
    """Thresholds of the checks; the defaults are the documented ones."""

    quiet_days: int = 7
    default_camera_interval: timedelta = timedelta(hours=1)
    rejection_window: timedelta = timedelta(hours=24)
    rejection_warning: float = 0.05
    rejection_critical: float = 0.25
    rejection_min_events: int = 20
    partitions_ahead: int = 3
    critical_limits: frozenset[str] = frozenset({"events_per_month", "api_calls_per_day"})


@dataclass(frozen=True)
class Issue:
    check: str
    severity: HealthStatus
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": str(self.severity), "reason": self.reason,
                "details": self.details}  # fmt: skip


def status_of(issues: Iterable[Issue]) -> HealthStatus:
    worst = HealthStatus.HEALTHY
    for issue in issues:
        if _RANK[issue.severity] > _RANK[worst]:
            worst = issue.severity
    return worst


@dataclass(frozen=True)
class TenantHealth:
    tenant: Tenant
    issues: list[Issue]
    checked_at: datetime

    @property
    def status(self) -> HealthStatus:
        return status_of(self.issues)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant.slug,
            "tenant_status": str(self.tenant.status),
            "placement": str(self.tenant.placement),
            "plan": self.tenant.plan,
            "status": str(self.status),
            "issues": [i.as_dict() for i in self.issues],
            "checked_at": self.checked_at.isoformat(),
        }


@dataclass(frozen=True)
class CameraHealth:
    camera_id: int
    name: str
    site: str
    camera_status: str
    last_delivery_at: datetime | None
    expected_interval_minutes: float
    silent_open_minutes: float  # business-hours minutes since the last delivery (or creation)
    issue: Issue | None

    @property
    def status(self) -> str:
        if self.camera_status != "active":
            return self.camera_status
        return "silent" if self.issue else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "camera_id": self.camera_id,
            "name": self.name,
            "site": self.site,
            "status": self.status,
            "last_delivery_at": self.last_delivery_at.isoformat() if self.last_delivery_at else None,
            "expected_interval_minutes": self.expected_interval_minutes,
            "silent_business_minutes": round(self.silent_open_minutes, 1),
            "reason": self.issue.reason if self.issue else None,
        }


# -- business hours ----------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _intervals(hours: Mapping[str, Any] | None) -> list[OpenInterval]:
    try:
        return open_intervals(hours or {})
    except CamcountError:
        return open_intervals({})  # an invalid stored value: treat the site as always open


def open_time_between(
    start: datetime, end: datetime, timezone: str, hours: Mapping[str, Any] | None
) -> timedelta:
    """How much of [start, end) falls in the business hours (local time of ``timezone``)."""
    start = max(start, end - _LOOKBACK)
    if end <= start:
        return timedelta(0)
    intervals = _intervals(hours)
    zone = _zone(timezone)
    total = timedelta(0)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        for interval in intervals:
            if interval.isodow != day.isoweekday():
                continue
            opens = datetime.combine(day, time(0), zone) + timedelta(minutes=interval.start_minute)
            closes = datetime.combine(day, time(0), zone) + timedelta(minutes=interval.end_minute)
            # Wall-clock arithmetic in the zone; convert to UTC for the overlap.
            lo = max(opens.astimezone(UTC), start)
            hi = min(closes.astimezone(UTC), end)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def _camera_interval(config: Mapping[str, Any] | None, policy: HealthPolicy) -> timedelta:
    value = (config or {}).get("expected_interval_minutes")
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value <= 7 * 24 * 60:
        return timedelta(minutes=float(value))
    return policy.default_camera_interval


# -- the checks --------------------------------------------------------------------------------

_CAMERAS_QUERY = """
SELECT c.id, c.name, s.name, c.status, c.config, c.last_delivery_at, c.created_at, s.timezone, s.business_hours
FROM cameras c JOIN sites s ON s.tenant_id = c.tenant_id AND s.id = c.site_id
ORDER BY c.id
"""


async def camera_health(
    conn: AsyncConnection, *, now: datetime, policy: HealthPolicy | None = None
) -> list[CameraHealth]:
    """Inside a tenant transaction: every camera of the tenant, silent or not."""
    policy = policy or HealthPolicy()
    result = []
    for cam_id, name, site, status, config, last, created, tz, hours in await (
        await conn.execute(_CAMERAS_QUERY)
    ).fetchall():
        expected = _camera_interval(config, policy)
        silent = open_time_between(last or created, now, tz, hours) if status == "active" else timedelta(0)
        issue = None
        if status == "active" and silent > expected:
            issue = Issue(
                "camera_silent",
                HealthStatus.WARNING,
                f"camera {name!r} at site {site!r} has sent nothing for {_minutes_text(silent)} of business "
                f"hours (expected at least every {_minutes_text(expected)})",
                {"camera_id": cam_id, "silent_minutes": round(silent.total_seconds() / 60, 1),
                 "expected_minutes": expected.total_seconds() / 60},
            )  # fmt: skip
        result.append(
            CameraHealth(cam_id, name, site, status, last, expected.total_seconds() / 60,
                         silent.total_seconds() / 60, issue)
        )  # fmt: skip
    return result


def _minutes_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _entity_counts_query() -> sql.Composed:
    parts = [
        sql.SQL("(SELECT count(*) FROM {} WHERE {}) AS {}").format(
            sql.Identifier(table),
            sql.SQL(condition),
            sql.Identifier(resource),
        )
        for resource, (table, condition) in ENTITY_RESOURCES.items()
    ]
    return sql.SQL("SELECT {}").format(sql.SQL(", ").join(parts))


async def _tenant_data_issues(
    db: Database, tenant: Tenant, limits: list[tuple[str, int, int, str | None, datetime | None]], *,
    now: datetime, policy: HealthPolicy, active: bool,
) -> list[Issue]:  # fmt: skip
    issues: list[Issue] = []
    async with tenant_transaction(db, tenant.location) as conn:
        row = await (await conn.execute(_entity_counts_query())).fetchone()
        entity_usage = dict(zip(ENTITY_RESOURCES, row or (), strict=False))
        for resource, limit, current, period, period_start in limits:
            if resource in entity_usage:
                used = int(entity_usage[resource])
            elif period is not None and (period_start is None or now - period_start > _PERIOD_LENGTH[period]):
                used = 0  # the period ended; the reset has not happened yet
            else:
                used = current
            if used >= limit and used > 0:
                severity = (
                    HealthStatus.CRITICAL if resource in policy.critical_limits else HealthStatus.WARNING
                )
                issues.append(Issue("limit_reached", severity, f"limit reached: {resource} {used} of {limit}",
                                    {"resource": resource, "used": used, "limit": limit}))  # fmt: skip
        if not active:
            return issues
        cameras = await camera_health(conn, now=now, policy=policy)
        quiet_since = now - timedelta(days=policy.quiet_days)
        watched = [c for c in cameras if c.camera_status == "active"]
        old_enough = await conn.execute(
            "SELECT count(*) FROM cameras WHERE status = 'active' AND created_at <= %s", (quiet_since,)
        )
        old_row = await old_enough.fetchone()
        if watched and old_row and old_row[0]:
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM counting_results WHERE occurred_at > %s AND occurred_at <= %s)",
                (quiet_since, now),
            )
            recent = await cur.fetchone()
            if not (recent and recent[0]):
                issues.append(Issue("no_recent_events", HealthStatus.WARNING,
                                    f"no events in the last {policy.quiet_days} days",
                                    {"since": quiet_since.isoformat()}))  # fmt: skip
        issues.extend(c.issue for c in cameras if c.issue is not None)
    return issues


def _rejection_issue(accepted: int, duplicate: int, rejected: int, policy: HealthPolicy) -> Issue | None:
    received = accepted + duplicate + rejected
    if received < policy.rejection_min_events or received == 0:
        return None
    rate = rejected / received
    if rate >= policy.rejection_critical:
        severity = HealthStatus.CRITICAL
    elif rate >= policy.rejection_warning:
        severity = HealthStatus.WARNING
    else:
        return None
    hours = int(policy.rejection_window.total_seconds() // 3600)
    return Issue("ingestion_rejections", severity,
                 f"{rate:.0%} of events rejected in the last {hours} h ({rejected} of {received})",
                 {"rejected": rejected, "received": received, "rate": round(rate, 4)})  # fmt: skip


async def _target_issues(
    db: Database, tenant: Tenant, *, now: datetime, policy: HealthPolicy, wanted_versions: list[str]
) -> list[Issue]:
    issues: list[Issue] = []
    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        applied = (await ledger.applied_versions(conn, [tenant.schema_name])).get(tenant.schema_name, set())
        have = await existing_partitions(conn, tenant.schema_name)
    missing_versions = [v for v in wanted_versions if v not in applied]
    if missing_versions:
        issues.append(Issue("migrations_behind", HealthStatus.CRITICAL,
                            f"migrations behind: {', '.join(missing_versions)} not applied; run `camcount migrate`",
                            {"pending": missing_versions}))  # fmt: skip
    # Provisioning creates this month's and next month's partitions; the hourly partitions job
    # adds the rest, so a tenant younger than two job runs is only held to those two.
    young = tenant.created_at is not None and now - tenant.created_at < PARTITIONS_GRACE
    ahead = min(policy.partitions_ahead, PROVISIONED_PARTITIONS_AHEAD) if young else policy.partitions_ahead
    months = months_window(now.astimezone(UTC).date(), behind=0, ahead=ahead)
    missing = [m for m in months if partition_name(m) not in have]
    if missing:
        current_missing = missing[0] == months[0]
        issues.append(Issue(
            "partitions_missing", HealthStatus.CRITICAL if current_missing else HealthStatus.WARNING,
            "partitions missing for " + ", ".join(f"{m:%Y-%m}" for m in missing)
            + ("; events of this month land in the default partition" if current_missing else ""),
            {"months": [f"{m:%Y-%m}" for m in missing]},
        ))  # fmt: skip
    return issues


async def check_tenant(
    db: Database, tenant: Tenant, *, now: datetime, policy: HealthPolicy | None = None
) -> TenantHealth:
    """Run every check for one tenant."""
    policy = policy or HealthPolicy()
    async with db.owner() as conn:
        limits = await (await conn.execute(
            "SELECT resource, limit_value, current_usage, reset_period, period_start FROM control.tenant_limits "
            "WHERE tenant_id = %s ORDER BY resource", (tenant.id,),
        )).fetchall()  # fmt: skip
        counters = await (await conn.execute(
            "SELECT coalesce(sum(accepted), 0), coalesce(sum(duplicate), 0), coalesce(sum(rejected), 0) "
            "FROM control.ingestion_counters WHERE tenant_id = %s AND hour > %s AND hour <= %s",
            (tenant.id, now - policy.rejection_window, now),
        )).fetchone()  # fmt: skip
    active = tenant.status is Status.ACTIVE
    issues = await _tenant_data_issues(db, tenant, list(limits), now=now, policy=policy, active=active)
    if active and counters is not None:
        rejection = _rejection_issue(int(counters[0]), int(counters[1]), int(counters[2]), policy)
        if rejection is not None:
            issues.append(rejection)
    wanted = [m.version for m in ledger.load_migrations(ledger.TENANT_TREE)]
    issues.extend(await _target_issues(db, tenant, now=now, policy=policy, wanted_versions=wanted))
    return TenantHealth(tenant, issues, now)


async def check_all(
    db: Database, *, now: datetime, policy: HealthPolicy | None = None, parallel: int = 4
) -> list[TenantHealth]:
    """Every tenant (except those still being provisioned), a few at a time, in slug order."""
    async with db.owner() as conn:
        tenants = await list_tenants(conn)
    semaphore = asyncio.Semaphore(parallel)

    async def one(tenant: Tenant) -> TenantHealth:
        async with semaphore:
            try:
                return await check_tenant(db, tenant, now=now, policy=policy)
            except Exception as exc:  # one broken tenant must not hide the others' health
                issue = Issue("check_failed", HealthStatus.CRITICAL,
                              f"health check failed: {type(exc).__name__}: {str(exc)[:200]}")  # fmt: skip
                return TenantHealth(tenant, [issue], now)

    return list(await asyncio.gather(*(one(t) for t in tenants)))


async def save_snapshot(db: Database, results: list[TenantHealth]) -> None:
    """Store each tenant's latest health (control.tenant_health), for /metrics and dashboards."""
    async with db.owner() as conn, conn.cursor() as cur:
        await cur.executemany(
            """
            INSERT INTO control.tenant_health (tenant_id, status, issues, checked_at)
            SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM control.tenants WHERE id = %s)
            ON CONFLICT (tenant_id) DO UPDATE
            SET status = EXCLUDED.status, issues = EXCLUDED.issues, checked_at = EXCLUDED.checked_at
            """,
            [(r.tenant.id, str(r.status), Jsonb([i.as_dict() for i in r.issues]), r.checked_at, r.tenant.id)
             for r in results],
        )  # fmt: skip
